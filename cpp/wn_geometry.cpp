#include "wn_geometry.hpp"

#include <Eigen/Eigenvalues>
#include <Eigen/SVD>
#include <algorithm>
#include <cmath>
#include <vector>

namespace wnsense {
namespace {
using MatrixXd = Eigen::MatrixXd;
using Block = Eigen::Map<RowMatrixXd>;
using ConstBlock = Eigen::Map<const RowMatrixXd>;

MatrixXd sym(const MatrixXd& B) { return 0.5 * (B + B.transpose()); }

// N = (Y^T Y)^{-1/2} and N^{-1} for Y = X + xi, from an r x r symmetric eigendecomposition: Y N
// is the exact polar factor of Y. (In exact arithmetic Y^T Y = I + xi^T xi, since X^T X = I and
// X^T xi = 0; near convergence the damped inverse in xi amplifies any rounding in those two
// identities, and the shortcut then drifts off the manifold, by ~1.6x per iteration.)
void polar_factors(const RowMatrixXd& Y, MatrixXd* N, MatrixXd* N_inv) {
  const Eigen::SelfAdjointEigenSolver<MatrixXd> eig(sym(Y.transpose() * Y));
  const Eigen::VectorXd s = eig.eigenvalues().array().max(1e-300).sqrt();
  const MatrixXd& Q = eig.eigenvectors();
  *N = Q * s.cwiseInverse().asDiagonal() * Q.transpose();
  *N_inv = Q * s.asDiagonal() * Q.transpose();
}
}  // namespace

double tangent_inner(const Eigen::Ref<const RowMatrixXd>& a, const Eigen::Ref<const RowMatrixXd>& b,
                     const TangentMetric& m) {
  const Index n = a.rows(), t = m.theta_row;
  return (a.topRows(t).array() * b.topRows(t).array()).sum() +
         m.theta_weight * (a.bottomRows(n - t).array() * b.bottomRows(n - t).array()).sum();
}

RowMatrixXd lbfgs_direction(const Eigen::Ref<const RowMatrixXd>& g, const double* S,
                            const double* Y, Index k, const TangentMetric& metric,
                            double curvature, bool* reset) {
  *reset = false;
  const Index n = g.rows(), r = g.cols();
  if (k == 0) return -g / curvature;
  auto s_ = [&](Index i) { return ConstBlock(S + i * n * r, n, r); };
  auto y_ = [&](Index i) { return ConstBlock(Y + i * n * r, n, r); };
  RowMatrixXd q = g;
  std::vector<double> alpha(k), rho(k);
  for (Index i = k - 1; i >= 0; --i) {
    rho[i] = 1.0 / tangent_inner(y_(i), s_(i), metric);
    alpha[i] = rho[i] * tangent_inner(s_(i), q, metric);
    q -= alpha[i] * y_(i);
  }
  const double gamma = tangent_inner(s_(k - 1), y_(k - 1), metric) /
                       tangent_inner(y_(k - 1), y_(k - 1), metric);
  RowMatrixXd z = gamma * q;
  for (Index i = 0; i < k; ++i) {
    const double beta = rho[i] * tangent_inner(y_(i), z, metric);
    z += (alpha[i] - beta) * s_(i);
  }
  RowMatrixXd p = -z;
  if (!(tangent_inner(g, p, metric) < 0.0)) {  // not a descent direction (or NaN): restart
    *reset = true;
    return -g / curvature;
  }
  return p;
}

RowMatrixXd wn_gradient_sym(const Eigen::Ref<const RowMatrixXd>& X,
                            const Eigen::Ref<const RowMatrixXd>& SX) {
  const Index d = X.rows(), r = X.cols();
  const MatrixXd D = sym(X.transpose() * SX);
  RowMatrixXd g(d + r, r);
  g.topRows(d) = SX - X * D;
  g.bottomRows(r) = D;
  return g;
}

RowMatrixXd wn_gradient_rect(const Eigen::Ref<const RowMatrixXd>& XL,
                             const Eigen::Ref<const RowMatrixXd>& XR,
                             const Eigen::Ref<const RowMatrixXd>& EXR,
                             const Eigen::Ref<const RowMatrixXd>& EtXL) {
  const Index d1 = XL.rows(), d2 = XR.rows(), r = XL.cols();
  const MatrixXd D = XL.transpose() * EXR;
  RowMatrixXd g(d1 + d2 + r, r);
  g.topRows(d1) = EXR - XL * D;
  g.middleRows(d1, d2) = EtXL - XR * D.transpose();
  g.bottomRows(r) = D;
  return g;
}

void nystrom_retract_sym(const Eigen::Ref<const RowMatrixXd>& X,
                         const Eigen::Ref<const RowMatrixXd>& Theta,
                         const Eigen::Ref<const RowMatrixXd>& v, double t, double lam,
                         RowMatrixXd* X_new, RowMatrixXd* Theta_new) {
  const Index d = X.rows(), r = X.cols();
  const MatrixXd Tt = sym(Theta + t * v.bottomRows(r));
  const Eigen::SelfAdjointEigenSolver<MatrixXd> eig(Tt);
  const Eigen::VectorXd inv = (eig.eigenvalues().array().abs() + lam).inverse();
  const MatrixXd& W = eig.eigenvectors();
  const MatrixXd P = W * inv.asDiagonal() * W.transpose();  // damped |Theta_t|^{-1}
  const RowMatrixXd Y = X + t * (v.topRows(d) * P);   // X + xi
  MatrixXd N, N_inv;
  polar_factors(Y, &N, &N_inv);
  *X_new = Y * N;
  *Theta_new = sym(N_inv * Tt * N_inv);
}

void nystrom_retract_rect(const Eigen::Ref<const RowMatrixXd>& XL,
                          const Eigen::Ref<const RowMatrixXd>& Theta,
                          const Eigen::Ref<const RowMatrixXd>& XR,
                          const Eigen::Ref<const RowMatrixXd>& v, double t, double lam,
                          RowMatrixXd* XL_new, RowMatrixXd* Theta_new, RowMatrixXd* XR_new) {
  const Index d1 = XL.rows(), d2 = XR.rows(), r = XL.cols();
  const MatrixXd Tt = Theta + t * v.bottomRows(r);
#if EIGEN_VERSION_AT_LEAST(3, 4, 90)
  const Eigen::JacobiSVD<MatrixXd, Eigen::ComputeFullU | Eigen::ComputeFullV> svd(Tt);
#else
  const Eigen::JacobiSVD<MatrixXd> svd(Tt, Eigen::ComputeFullU | Eigen::ComputeFullV);
#endif
  const Eigen::VectorXd inv = (svd.singularValues().array() + lam).inverse();
  const MatrixXd& U = svd.matrixU();
  const MatrixXd& V = svd.matrixV();
  const RowMatrixXd YL = XL + t * (v.topRows(d1) * (V * inv.asDiagonal() * U.transpose()));
  const RowMatrixXd YR = XR + t * (v.middleRows(d1, d2) * (U * inv.asDiagonal() * V.transpose()));
  MatrixXd NL, NL_inv, NR, NR_inv;
  polar_factors(YL, &NL, &NL_inv);
  polar_factors(YR, &NR, &NR_inv);
  *XL_new = YL * NL;
  *XR_new = YR * NR;
  *Theta_new = NL_inv * Tt * NR_inv;
}

// The vectors are independent: a team of threads splits them (each vector is computed by one
// thread, so the bits do not depend on the team). At d = 1e5, r = 10 with an L-BFGS memory of 5
// the transport of 12 vectors was the largest cost of an iteration, single-threaded.
static int transport_team(Index n, Index r, Index k) {
  if (k < 2 || n * r * k < (Index{1} << 16)) return 1;
  return static_cast<int>(std::min<Index>(resolve_threads(0), k));   // a thread per vector at most
}

void wn_transport_sym(const Eigen::Ref<const RowMatrixXd>& X,
                      const Eigen::Ref<const RowMatrixXd>& X_new, double* V, Index k) {
  const Index d = X.rows(), r = X.cols(), n = d + r;
  const MatrixXd XtXn = X.transpose() * X_new;
  const int nt = transport_team(n, r, k);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (Index i = 0; i < k; ++i) {
    Block v(V + i * n * r, n, r);
    const RowMatrixXd K = v.topRows(d);
    const MatrixXd z = v.bottomRows(r);
    // D Z X_new with D Z = K X^T + X K^T + X z X^T: the two X-products folded into one
    const RowMatrixXd DZXn = K * XtXn + X * (K.transpose() * X_new + z * XtXn);
    const MatrixXd zn = sym(X_new.transpose() * DZXn);
    v.topRows(d) = DZXn - X_new * zn;
    v.bottomRows(r) = zn;
  }
}

void wn_transport_rect(const Eigen::Ref<const RowMatrixXd>& XL,
                       const Eigen::Ref<const RowMatrixXd>& XR,
                       const Eigen::Ref<const RowMatrixXd>& XL_new,
                       const Eigen::Ref<const RowMatrixXd>& XR_new, double* V, Index k) {
  const Index d1 = XL.rows(), d2 = XR.rows(), r = XL.cols(), n = d1 + d2 + r;
  const MatrixXd a = XR.transpose() * XR_new, b = XL.transpose() * XL_new;
  const int nt = transport_team(n, r, k);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (Index i = 0; i < k; ++i) {
    Block v(V + i * n * r, n, r);
    const RowMatrixXd KL = v.topRows(d1), KR = v.middleRows(d1, d2);
    const MatrixXd z = v.bottomRows(r);
    // D Z X_R,new and (D Z)^T X_L,new with D Z = K_L X_R^T + X_L K_R^T + X_L z X_R^T
    const RowMatrixXd DZXRn = KL * a + XL * (KR.transpose() * XR_new + z * a);
    const RowMatrixXd DZtXLn = KR * b + XR * (KL.transpose() * XL_new + z.transpose() * b);
    const MatrixXd zn = XL_new.transpose() * DZXRn;
    v.topRows(d1) = DZXRn - XL_new * zn;
    v.middleRows(d1, d2) = DZtXLn - XR_new * zn.transpose();
    v.bottomRows(r) = zn;
  }
}

}  // namespace wnsense

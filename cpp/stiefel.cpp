#include "stiefel.hpp"

#include <Eigen/Eigenvalues>
#include <Eigen/QR>
#include <Eigen/SVD>
#include <algorithm>
#include <cmath>
#include <limits>

namespace wnsense {

namespace {
using MatrixXd = Eigen::MatrixXd;

// X - eta G up to a positive factor. The polar and Q factors of a matrix do not change when it is
// multiplied by a positive number, so a step whose entries would overflow (huge |eta| or G: the
// Gram matrix or the Householder norms become Inf and the factor NaN) or underflow is rescaled.
// Steps of moderate size take the plain formula, bit for bit.
RowMatrixXd scaled_step(const Eigen::Ref<const RowMatrixXd>& X,
                        const Eigen::Ref<const RowMatrixXd>& G, double eta) {
  RowMatrixXd Y = X - eta * G;
  const double big = Y.size() ? Y.cwiseAbs().maxCoeff() : 0.0;
  if (big > 1e-100 && big < 1e100) return Y;
  const double c = std::max(X.cwiseAbs().maxCoeff(), G.cwiseAbs().maxCoeff());
  if (!(c > 0) || !std::isfinite(c)) return Y;  // nothing to move, or non-finite input
  const double e = std::max(1.0, std::abs(eta));
  // (X - eta G) / (c e) = (X / c) / e - (eta / e) (G / c): every term at most 1 in magnitude
  Y = (X / c) / e - (eta / e) * (G / c);
  const double s = Y.cwiseAbs().maxCoeff();
  if (s > 0) Y /= s;
  return Y;
}
}  // namespace

RowMatrixXd tangent_projection(const Eigen::Ref<const RowMatrixXd>& X,
                               const Eigen::Ref<const RowMatrixXd>& G) {
  const MatrixXd XtG = X.transpose() * G;
  const MatrixXd sym = 0.5 * (XtG + XtG.transpose());
  return G - X * sym;
}

RowMatrixXd polar_retraction(const Eigen::Ref<const RowMatrixXd>& X,
                             const Eigen::Ref<const RowMatrixXd>& G, double eta) {
  const RowMatrixXd Y = scaled_step(X, G, eta);
  MatrixXd gram = Y.transpose() * Y;
  gram = 0.5 * (gram + gram.transpose());
  Eigen::SelfAdjointEigenSolver<MatrixXd> eig(gram);
  const VectorXd& ev = eig.eigenvalues();  // ascending
  // Through Y^T Y the factor's error, and its distance from orthonormality, grow like
  // cond(Y)^2 eps: fine for the steps WN-RGD takes (cond(Y)^2 = 1 + eta^2 ||G||^2 at most for a
  // tangent G at an orthonormal X). An ill-conditioned step (a huge eta along a rank-deficient G:
  // Y^T Y = I + eta^2 G^T G is not representable) takes the SVD route, whose factor is orthonormal
  // to rounding for every Y (the exact polar factor of some Y + E, ||E|| ~ eps ||Y||).
  const bool well_conditioned = ev(0) >= 1e-2 * ev(ev.size() - 1);  // cond(Y) <= 10
  if (well_conditioned || !Y.allFinite()) {
    const VectorXd inv_sqrt = ev.cwiseMax(1e-300).cwiseSqrt().cwiseInverse();
    const MatrixXd& Q = eig.eigenvectors();
    const MatrixXd gram_inv_sqrt = Q * inv_sqrt.asDiagonal() * Q.transpose();
    return Y * gram_inv_sqrt;
  }
  // Y = Q R (Householder, thin), R = U S V^T: the polar factor of Y is Q U V^T
  const Index d = Y.rows(), r = Y.cols();
  Eigen::HouseholderQR<MatrixXd> qr{MatrixXd(Y)};
  const MatrixXd Q = qr.householderQ() * MatrixXd::Identity(d, r);
  const MatrixXd R = qr.matrixQR().topRows(r).triangularView<Eigen::Upper>();
#if EIGEN_VERSION_AT_LEAST(3, 4, 90)
  const Eigen::JacobiSVD<MatrixXd, Eigen::ComputeFullU | Eigen::ComputeFullV> svd(R);
#else
  const Eigen::JacobiSVD<MatrixXd> svd(R, Eigen::ComputeFullU | Eigen::ComputeFullV);
#endif
  return Q * (svd.matrixU() * svd.matrixV().transpose());
}

RowMatrixXd qr_retraction(const Eigen::Ref<const RowMatrixXd>& X,
                          const Eigen::Ref<const RowMatrixXd>& G, double eta) {
  const Index d = X.rows(), r = X.cols();
  const MatrixXd Y = scaled_step(X, G, eta);
  Eigen::HouseholderQR<MatrixXd> qr(Y);
  MatrixXd Q = qr.householderQ() * MatrixXd::Identity(d, r);
  const auto& R = qr.matrixQR();
  for (Index j = 0; j < r; ++j)
    if (R(j, j) < 0) Q.col(j) *= -1.0;
  return Q;
}

RowMatrixXd cayley_retraction(const Eigen::Ref<const RowMatrixXd>& X,
                              const Eigen::Ref<const RowMatrixXd>& Gt, double eta) {
  const Index d = X.rows(), r = X.cols();
  RowMatrixXd out = X;
  const double cx = X.cwiseAbs().maxCoeff(), cg = Gt.cwiseAbs().maxCoeff();
  if (!std::isfinite(cx) || !std::isfinite(cg) || !std::isfinite(eta))  // NaN in, NaN out
    return RowMatrixXd::Constant(d, r, std::numeric_limits<double>::quiet_NaN());
  if (eta == 0.0 || cx == 0.0 || cg == 0.0) return out;  // W = 0 or no step: X itself
  // W = Gt X^T - X Gt^T lives on range [X, Gt]. With the thin QR [X / cx, Gt / cg] = Q [R1, R2]
  // (k = min(d, 2r) orthonormal columns): W = cx cg Q S Q^T, S = R2 R1^T - R1 R2^T (k x k, skew),
  // and the Cayley transform acts on range(Q) only: X+ = X + Q (C - I) Q^T X with
  // C = (I + a' S)^{-1} (I - a' S), a' = cx cg eta / 2.
  MatrixXd B(d, 2 * r);
  B.leftCols(r) = X / cx;
  B.rightCols(r) = Gt / cg;
  const Index k = std::min<Index>(d, 2 * r);
  Eigen::HouseholderQR<MatrixXd> qr(B);
  const MatrixXd Q = qr.householderQ() * MatrixXd::Identity(d, k);
  const MatrixXd R = qr.matrixQR().topRows(k).triangularView<Eigen::Upper>();
  MatrixXd S = R.rightCols(r) * R.leftCols(r).transpose();
  S = (S - S.transpose()).eval();
  // C from the real Schur form S = Z T Z^T: T is block diagonal for a skew S (up to rounding),
  // with 2 x 2 blocks w [[0, 1], [-1, 0]] and 1 x 1 zero blocks. On a 2 x 2 block J,
  // (I + th J)^{-1}(I - th J) - I = (-2 th^2 I - 2 th J) / (1 + th^2), th = a' w: an exact rotation,
  // evaluated without overflow for every th; 1 x 1 blocks leave C = I. So C is orthogonal to
  // rounding for every step size (solving with I + a' S instead loses orthogonality in proportion
  // to |eta| ||W||: 1e-10 at eta = 1e6), and the result is the exact transform of a skew matrix
  // within rounding of S (backward stable).
  const Eigen::RealSchur<MatrixXd> schur(S);
  const MatrixXd& T = schur.matrixT();
  const MatrixXd& Z = schur.matrixU();
  const double a = 0.5 * eta * cx * cg;  // may overflow to Inf: th = a w is then +-Inf, handled
  MatrixXd D = MatrixXd::Zero(k, k);
  for (Index j = 0; j < k; ++j) {
    if (j + 1 < k && T(j + 1, j) != 0.0) {
      const double w = 0.5 * (T(j, j + 1) - T(j + 1, j));
      const double th = (w == 0.0) ? 0.0 : a * w;
      double diag, off;  // D block = diag I + off J
      if (std::abs(th) <= 1.0) {
        diag = -2.0 * th * th / (1.0 + th * th);
        off = -2.0 * th / (1.0 + th * th);
      } else {
        const double u = 1.0 / th;
        diag = -2.0 / (1.0 + u * u);
        off = -2.0 * u / (1.0 + u * u);
      }
      D(j, j) = D(j + 1, j + 1) = diag;
      D(j, j + 1) = off;
      D(j + 1, j) = -off;
      ++j;
    }
  }
  const MatrixXd CmI = Z * D * Z.transpose();
  out += Q * (CmI * (Q.transpose() * X));
  return out;
}

}  // namespace wnsense

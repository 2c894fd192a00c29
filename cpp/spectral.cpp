// The SNN's spectral activation and network passes (see spectral.hpp). The SVD lives in this
// translation unit only (Eigen's SVD templates are heavy to compile).
#include "spectral.hpp"

#include <Eigen/SVD>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

namespace wnsense {

double tanhc(double x) {
  if (std::abs(x) < 1e-3) {
    const double x2 = x * x;  // tanh(x)/x = 1 - x^2/3 + 2 x^4/15 - ...; next term ~ 1e-19 here
    return 1.0 - x2 / 3.0 + 2.0 * x2 * x2 / 15.0;
  }
  return std::tanh(x) / x;
}

SpectralSVD spectral_svd(const Eigen::Ref<const RowMatrixXd>& Q) {
  const Index d = Q.rows();
  SpectralSVD f;
  if (!Q.allFinite()) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    f.P = RowMatrixXd::Constant(d, d, nan);
    f.R = RowMatrixXd::Constant(d, d, nan);
    f.s = VectorXd::Constant(d, nan);
    return f;
  }
  const Eigen::MatrixXd A = Q;  // column-major copy for the SVD (d is small)
#if EIGEN_VERSION_AT_LEAST(3, 4, 90)
  Eigen::JacobiSVD<Eigen::MatrixXd, Eigen::ComputeFullU | Eigen::ComputeFullV> svd(A);
#else
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(A, Eigen::ComputeFullU | Eigen::ComputeFullV);
#endif
  f.P = svd.matrixU();
  f.s = svd.singularValues();
  f.R = svd.matrixV();
  return f;
}

RowMatrixXd spectral_apply(const SpectralSVD& f) {
  const VectorXd t = f.s.array().tanh().matrix();
  return f.P * t.asDiagonal() * f.R.transpose();
}

RowMatrixXd spectral_backward(const SpectralSVD& f, const Eigen::Ref<const RowMatrixXd>& G) {
  const Index d = f.s.size();
  const VectorXd t = f.s.array().tanh().matrix();
  const RowMatrixXd Gh = f.P.transpose() * G * f.R;
  RowMatrixXd D(d, d);
  for (Index i = 0; i < d; ++i) {
    D(i, i) = (1.0 - t(i) * t(i)) * Gh(i, i);  // f'(s_i) Gh_ii
    for (Index j = 0; j < d; ++j) {
      if (j == i) continue;
      // (f(s_i) - f(s_j)) / (s_i - s_j) and (f(s_i) + f(s_j)) / (s_i + s_j), exactly and without
      // cancellation (limits f'(s_i) when s_i = s_j, f'(0) = 1 when s_i = s_j = 0)
      const double c_minus = (1.0 - t(i) * t(j)) * tanhc(f.s(i) - f.s(j));
      const double c_plus = (1.0 + t(i) * t(j)) * tanhc(f.s(i) + f.s(j));
      const double sym = 0.5 * (Gh(i, j) + Gh(j, i)), skew = 0.5 * (Gh(i, j) - Gh(j, i));
      D(i, j) = c_minus * sym + c_plus * skew;
    }
  }
  return f.P * D * f.R.transpose();
}

void check_snn_shapes(Index U_rows, Index U_cols, Index V_rows, Index V_cols,
                      const std::vector<RowMatrixXd>& alpha) {
  require(U_cols >= 1 && U_rows >= U_cols && U_rows % U_cols == 0,
          "U must be a (d_1 * d, d) stack of d x d matrices");
  require(V_rows == U_rows && V_cols == U_cols, "V must have the shape of U");
  require(!alpha.empty(), "alphas must hold at least one mixing matrix");
  Index width = U_rows / U_cols;  // d_1
  for (std::size_t l = 0; l < alpha.size(); ++l) {
    const std::string name = "alphas[" + std::to_string(l) + "]";
    require(alpha[l].rows() == width,
            name + " must have " + std::to_string(width) + " rows, got " +
                std::to_string(alpha[l].rows()));
    require(alpha[l].cols() >= 1, name + " must have at least one column");
    width = alpha[l].cols();
  }
  require(width == 1, "the last mixing matrix must have one column (d_{L+1} = 1)");
}

SnnTape snn_forward(const Eigen::Ref<const RowMatrixXd>& U, const Eigen::Ref<const RowMatrixXd>& V,
                    std::vector<RowMatrixXd> alpha) {
  SnnTape tape;
  const Index d = U.cols(), d1 = U.rows() / d;
  tape.d = d;
  tape.U = U;
  tape.V = V;
  tape.alpha = std::move(alpha);
  const std::size_t L = tape.alpha.size();
  tape.svd.resize(L);
  tape.act.resize(L);

  std::vector<RowMatrixXd> prev(d1);  // X^(0)_k = U_k V_k^T
  for (Index k = 0; k < d1; ++k)
    prev[k] = U.middleRows(k * d, d) * V.middleRows(k * d, d).transpose();
  for (std::size_t l = 0; l < L; ++l) {
    const RowMatrixXd& a = tape.alpha[l];
    auto& svd = tape.svd[l];
    auto& act = tape.act[l];
    svd.resize(a.rows());
    act.resize(a.rows());
    for (Index k = 0; k < a.rows(); ++k) {
      svd[k] = spectral_svd(prev[k]);
      act[k] = spectral_apply(svd[k]);
    }
    std::vector<RowMatrixXd> next(a.cols(), RowMatrixXd::Zero(d, d));
    for (Index j = 0; j < a.cols(); ++j)
      for (Index k = 0; k < a.rows(); ++k) next[j] += a(k, j) * act[k];
    prev = std::move(next);
  }
  tape.X = std::move(prev[0]);
  return tape;
}

SnnGradients snn_backward(const SnnTape& tape, const Eigen::Ref<const RowMatrixXd>& GX) {
  const Index d = tape.d, d1 = tape.U.rows() / d;
  const std::size_t L = tape.alpha.size();
  SnnGradients g;
  g.alpha.resize(L);
  std::vector<RowMatrixXd> grad_next{RowMatrixXd(GX)};  // dL/dX^(L)_j, j = 1..d_{L+1} = 1
  for (std::size_t l = L; l-- > 0;) {
    const RowMatrixXd& a = tape.alpha[l];
    const auto& act = tape.act[l];
    RowMatrixXd& ga = g.alpha[l];
    ga.resize(a.rows(), a.cols());
    std::vector<RowMatrixXd> grad_prev(a.rows());
    for (Index k = 0; k < a.rows(); ++k) {
      RowMatrixXd grad_act = RowMatrixXd::Zero(d, d);  // dL/dGamma(X^(l)_k)
      for (Index j = 0; j < a.cols(); ++j) {
        ga(k, j) = (grad_next[j].array() * act[k].array()).sum();  // <dL/dX^(l+1)_j, Gamma_k>
        grad_act += a(k, j) * grad_next[j];
      }
      grad_prev[k] = spectral_backward(tape.svd[l][k], grad_act);
    }
    grad_next = std::move(grad_prev);
  }
  // X^(0)_k = U_k V_k^T: dL/dU_k = G_k V_k, dL/dV_k = G_k^T U_k
  g.U.resize(d1 * d, d);
  g.V.resize(d1 * d, d);
  for (Index k = 0; k < d1; ++k) {
    g.U.middleRows(k * d, d) = grad_next[k] * tape.V.middleRows(k * d, d);
    g.V.middleRows(k * d, d) = grad_next[k].transpose() * tape.U.middleRows(k * d, d);
  }
  return g;
}

}  // namespace wnsense

#include "structured_sensing.hpp"

namespace wnsense {

void entry_forward(const std::int64_t* rows, const std::int64_t* cols, Index m, double scale,
                   bool symmetric, const Eigen::Ref<const RowMatrixXd>& Z, double* out) {
  for (Index i = 0; i < m; ++i) {
    const auto j = rows[i], k = cols[i];
    out[i] = symmetric ? scale * 0.5 * (Z(j, k) + Z(k, j)) : scale * Z(j, k);
  }
}

void entry_adjoint(const std::int64_t* rows, const std::int64_t* cols, Index m, double scale,
                   bool symmetric, const double* v, Eigen::Ref<RowMatrixXd> G) {
  G.setZero();
  // Sequential scatter: repeated entries add up in index order (deterministic).
  for (Index i = 0; i < m; ++i) {
    const auto j = rows[i], k = cols[i];
    if (symmetric) {
      G(j, k) += 0.5 * scale * v[i];
      G(k, j) += 0.5 * scale * v[i];
    } else {
      G(j, k) += scale * v[i];
    }
  }
}

void rank_one_forward_factored(const Eigen::Ref<const RowMatrixXd>& A, double scale,
                               const Eigen::Ref<const RowMatrixXd>& L,
                               const Eigen::Ref<const RowMatrixXd>& R, double* out) {
  const RowMatrixXd AL = A * L;
  const RowMatrixXd AR = A * R;
  for (Index i = 0; i < A.rows(); ++i) out[i] = scale * AL.row(i).dot(AR.row(i));
}

void rank_one_adjoint(const Eigen::Ref<const RowMatrixXd>& A, double scale, const double* v,
                      Eigen::Ref<RowMatrixXd> G) {
  const Eigen::Map<const VectorXd> vv(v, A.rows());
  RowMatrixXd VA = vv.asDiagonal() * A;
  G.noalias() = scale * (A.transpose() * VA);
}

}  // namespace wnsense

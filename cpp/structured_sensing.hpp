// Matrix-free sensing operators: entry sampling (matrix completion) and rank-one measurements.
#pragma once
#include "common.hpp"

namespace wnsense {

// Entry sampling: M_i = scale * e_{rows_i} e_{cols_i}^T, or its symmetrization
// scale * (e_j e_k^T + e_k e_j^T) / 2 when symmetric.
void entry_forward(const std::int64_t* rows, const std::int64_t* cols, Index m, double scale,
                   bool symmetric, const Eigen::Ref<const RowMatrixXd>& Z, double* out);
void entry_adjoint(const std::int64_t* rows, const std::int64_t* cols, Index m, double scale,
                   bool symmetric, const double* v, Eigen::Ref<RowMatrixXd> G);

// Rank-one: M_i = scale * a_i a_i^T with a_i the rows of A (m x d). The forward map takes the model
// in factored form Z = L R^T and never forms a d x d matrix: <M_i, L R^T> = scale (a_i^T L)(R^T a_i).
void rank_one_forward_factored(const Eigen::Ref<const RowMatrixXd>& A, double scale,
                               const Eigen::Ref<const RowMatrixXd>& L,
                               const Eigen::Ref<const RowMatrixXd>& R, double* out);
// sum_i v_i M_i = scale * A^T diag(v) A.
void rank_one_adjoint(const Eigen::Ref<const RowMatrixXd>& A, double scale, const double* v,
                      Eigen::Ref<RowMatrixXd> G);

}  // namespace wnsense

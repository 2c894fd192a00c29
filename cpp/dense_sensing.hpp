// Dense sensing operators over a stored (m, p) row-major block, float64 or float32 storage,
// full (p = d1*d2, row-major M_i) or packed upper triangle (p = d(d+1)/2, symmetric M_i).
//
// Parallel reductions use a fixed partition of the rows into slices that depends only on m:
// each slice owns an accumulator and the slices are summed in index order, so a result is the
// same bit for bit whatever the number of threads.
#pragma once
#include "common.hpp"

namespace wnsense {

struct DenseLayout {
  Index d1 = 0, d2 = 0;
  bool packed = false;
  Index stored_per_row() const { return packed ? d1 * (d1 + 1) / 2 : d1 * d2; }
};

// Turn a d1 x d2 matrix Z into the weight vector w with <M_i, Z> = <row_i, w>: Z itself in the
// full layout; Z_jj and Z_jk + Z_kj (j < k) in the packed layout.
void matrix_to_weights(const DenseLayout& layout, const Eigen::Ref<const RowMatrixXd>& Z,
                       Eigen::Ref<VectorXd> w);
// Turn sum_i v_i row_i (length p) into the d1 x d2 matrix sum_i v_i M_i.
void accumulator_to_matrix(const DenseLayout& layout, const Eigen::Ref<const VectorXd>& acc,
                           Eigen::Ref<RowMatrixXd> G);

template <class T>
void dense_forward(const T* data, Index m, const DenseLayout& layout,
                   const Eigen::Ref<const RowMatrixXd>& Z, Eigen::Ref<VectorXd> out, int n_threads);

template <class T>
void dense_adjoint(const T* data, Index m, const DenseLayout& layout,
                   const Eigen::Ref<const VectorXd>& v, Eigen::Ref<RowMatrixXd> G, int n_threads);

// r = A(Z) - y, returns ||r||^2; when G is non-empty also G = A*(r), in the same pass.
template <class T>
double dense_residual_adjoint(const T* data, Index m, const DenseLayout& layout,
                              const Eigen::Ref<const RowMatrixXd>& Z,
                              const Eigen::Ref<const VectorXd>& y, Eigen::Ref<VectorXd> r,
                              RowMatrixXd* G, int n_threads);

// Number of row slices used for a reduction over m rows (depends on m only).
Index reduction_slices(Index m);

}  // namespace wnsense

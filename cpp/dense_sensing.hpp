// Dense sensing operators over a stored (m, p) row-major block, float64 or float32 storage,
// full (p = d1*d2, row-major M_i) or packed upper triangle (p = d(d+1)/2, symmetric M_i).
//
// Parallel reductions use a fixed partition of the rows into slices that depends only on m:
// each slice owns an accumulator and the slices are summed in index order, so a result is the
// same bit for bit whatever the number of threads.
#pragma once
#include <vector>

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

// Thin products of the adjoint requested from one pass: A*(r) @ right (d2 x k) and
// A*(r)^T @ left (d1 x k'); either may be absent. With `symmetrize`, both use
// S = sym(A*(r)) instead (the symmetric problem family).
struct ThinRequest {
  const Eigen::Ref<const RowMatrixXd>* right = nullptr;
  const Eigen::Ref<const RowMatrixXd>* left = nullptr;
  bool symmetrize = false;
  bool any() const { return right != nullptr || left != nullptr; }
};

// Per-slice results of one pass: slice s covers rows [bounds[s], bounds[s+1]) of the block.
struct SliceResults {
  std::vector<double> sumsq;    // ||r||^2 of each slice
  std::vector<RowMatrixXd> AV;  // slice partials of A*(r) @ right (when requested)
  std::vector<RowMatrixXd> AtU;  // slice partials of A*(r)^T @ left (when requested)
};

// One pass over rows [bounds[0], bounds.back()) of the block `data`: r = A(Z) - y (y == nullptr:
// zero measurements) with Z given by its weights w (matrix_to_weights), and, per slice, the thin
// products of the slice's adjoint A_s*(r_s). Each slice accumulates its own d1 x d2 adjoint (the
// size of one measurement) and multiplies it by the thin matrices itself; nothing is reduced
// here. Results are independent of n_threads.
template <class T>
void dense_residual_slices(const T* data, const DenseLayout& layout, const std::vector<Index>& bounds,
                           const Eigen::Ref<const VectorXd>& w, const double* y, double* r,
                           const ThinRequest& req, SliceResults* out, int n_threads);

// The same for a given v instead of a residual (adjoint only, no forward): the slices' thin
// products of A_s*(v_s).
template <class T>
void dense_adjoint_slices(const T* data, const DenseLayout& layout, const std::vector<Index>& bounds,
                          const double* v, const ThinRequest& req, SliceResults* out,
                          int n_threads);

// Fold per-slice partials in slice order (part[0] + part[1] + ...): the one reduction order
// every caller uses, so that a pass split over shards holding whole slices gives the same bits.
double fold_sumsq(const std::vector<double>& parts);
RowMatrixXd fold_products(const std::vector<RowMatrixXd>& parts);

// Number of row slices used for a reduction over m rows (depends on m only), and their bounds
// (multiples of 4 rows, so every slice runs the 4-row kernel on the same row groups).
Index reduction_slices(Index m);
std::vector<Index> slice_bounds(Index m);

}  // namespace wnsense

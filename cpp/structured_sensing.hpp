// Matrix-free sensing operators: sparse measurements (observed entries, entry sampling, a user's
// sparse measurement matrix) and rank-one measurements. Every pass takes the model in factored
// form Z = L R^T and returns thin products only: nothing d1 x d2 is formed.
#pragma once
#include <vector>

#include "common.hpp"
#include "dense_sensing.hpp"

namespace wnsense {

// Sparse measurements: M_i = sum_{t in [ptr[i], ptr[i+1])} vals[t] e_{rows[t]} e_{cols[t]}^T, or
// its symmetrization sym(M_i) when `symmetric`. ptr == nullptr: one nonzero per measurement
// (t = i); vals == nullptr: every value is `scale`. The arrays are copied at construction into
// owned storage and checked there (a caller that changes or frees its arrays afterwards cannot
// reach the operator), as are the groupings by row and by column.
class SparseMeasurements {
 public:
  // Copies the arrays, then checks every index of the copies (indptr: starts at 0, never
  // decreases, ends at nnz) before using any of them; throws std::invalid_argument naming the
  // array.
  SparseMeasurements(Index m, Index d1, Index d2, Index nnz, const std::int64_t* ptr,
                     const std::int64_t* rows, const std::int64_t* cols, const double* vals,
                     double scale, bool symmetric);
  // not copyable: the raw pointers point into the owned arrays
  SparseMeasurements(const SparseMeasurements&) = delete;
  SparseMeasurements& operator=(const SparseMeasurements&) = delete;

  Index m() const { return m_; }
  Index d1() const { return d1_; }
  Index d2() const { return d2_; }
  Index nnz() const { return nnz_; }
  bool symmetric() const { return symmetric_; }

  // r = A(L R^T) - y (y == nullptr: zero), returns ||r||^2; with a request also the thin
  // products of A*(r) (or S = sym(A*(r)) when symmetric). Deterministic for any thread count:
  // each output row is summed by one thread in a fixed order, and ||r||^2 is folded over the
  // fixed slices of slice_bounds(m).
  double residual(const Eigen::Ref<const RowMatrixXd>& L, const Eigen::Ref<const RowMatrixXd>& R,
                  const double* y, double* r, const ThinRequest& req, RowMatrixXd* AV,
                  RowMatrixXd* AtU, int n_threads) const;
  // The same pass in the operator's internal order (one nonzero per measurement only): entries
  // sorted by row, y_sorted = y[order()] and r_sorted in that order. The forward map and the
  // row-grouped product run in one sequential sweep over the sorted entries; the column side
  // reads a contiguous copy of the row indices in column order.
  // r_sorted may be nullptr (not wanted). y_by_col = y_sorted[col_order()] (optional): the column
  // side then recomputes r in column order instead of gathering it (the same bits, less traffic).
  double residual_sorted(const Eigen::Ref<const RowMatrixXd>& L,
                         const Eigen::Ref<const RowMatrixXd>& R, const double* y_sorted,
                         double* r_sorted, const ThinRequest& req, RowMatrixXd* AV,
                         RowMatrixXd* AtU, int n_threads,
                         const double* y_by_col = nullptr) const;
  // The unreduced pieces of residual_sorted, for an operator split over shards that each own
  // whole rows or whole columns: r (sorted order), every row's ||r||^2 (not folded:
  // row_sumsq has d1 entries) and, for each B of row_B, the row side sum over row g's entries of
  // w_q B[col_q]; for each B of col_B the column side sum over column c's entries of
  // w_q B[row_q] (w_q = scale r_q; never symmetrized or halved). residual_sorted is
  // fold_sumsq(row_sumsq) and, per product, the row side (A*(r) @ right), the column side
  // (A*(r)^T @ left) or their mean (symmetric): the same sums in the same order, bit for bit.
  void residual_sides(const Eigen::Ref<const RowMatrixXd>& L,
                      const Eigen::Ref<const RowMatrixXd>& R, const double* y_sorted,
                      double* r_sorted, std::vector<double>* row_sumsq,
                      const std::vector<const Eigen::Ref<const RowMatrixXd>*>& row_B,
                      std::vector<RowMatrixXd>* row_out,
                      const std::vector<const Eigen::Ref<const RowMatrixXd>*>& col_B,
                      std::vector<RowMatrixXd>* col_out, int n_threads) const;
  // The same sides for a given v in sorted order (w_q = scale v_q), no residual.
  void adjoint_sides(const double* v_sorted,
                     const std::vector<const Eigen::Ref<const RowMatrixXd>*>& row_B,
                     std::vector<RowMatrixXd>* row_out,
                     const std::vector<const Eigen::Ref<const RowMatrixXd>*>& col_B,
                     std::vector<RowMatrixXd>* col_out, int n_threads) const;
  bool one_per_measurement() const { return ptr_ == nullptr; }
  // the owned copies of the constructor's arrays (indptr and values empty when not given)
  const std::vector<std::int64_t>& indptr_array() const { return own_ptr_; }
  const std::vector<std::int64_t>& rows_array() const { return own_rows_; }
  const std::vector<std::int64_t>& cols_array() const { return own_cols_; }
  const std::vector<double>& values_array() const { return own_vals_; }
  // internal position q -> measurement index (entries sorted by row, stable)
  const std::vector<std::int64_t>& order() const { return by_row_; }
  // column-ordered position -> row-sorted position (one nonzero per measurement only)
  const std::vector<std::int64_t>& col_order() const { return by_col_sorted_; }
  // The thin products of A*(v) (or sym(A*(v))) for a given v.
  void adjoint_products(const double* v, const ThinRequest& req, RowMatrixXd* AV,
                        RowMatrixXd* AtU, int n_threads) const;
  // <M_i, Z> for a dense Z, and the dense adjoint sum_i v_i M_i (the public forward/adjoint).
  void forward_dense(const Eigen::Ref<const RowMatrixXd>& Z, double* out) const;
  void adjoint_dense(const double* v, Eigen::Ref<RowMatrixXd> G) const;

 private:
  double value(Index t) const { return vals_ ? vals_[t] : scale_; }
  Index measurement(Index t) const { return ptr_ ? meas_[t] : t; }
  // w[t] = value(t) * v[measurement(t)]: the weight of nonzero t in A*(v)
  std::vector<double> weights(const double* v, int team) const;
  void products(const std::vector<double>& w, const ThinRequest& req, RowMatrixXd* AV,
                RowMatrixXd* AtU, int team) const;
  // out[j] = sum over the nonzeros t of group j (in group order) of w[t] * B[other[t]]
  void grouped(const std::vector<std::int64_t>& group_ptr, const std::vector<std::int64_t>& order,
               const std::int64_t* other, const std::vector<double>& w,
               const Eigen::Ref<const RowMatrixXd>& B, RowMatrixXd* out, int team) const;
  int team(int n_threads, Index work) const;
  void row_side(const double* w, const Eigen::Ref<const RowMatrixXd>& B, RowMatrixXd* out,
                int nt) const;
  void col_side(const double* w, const Eigen::Ref<const RowMatrixXd>& B, RowMatrixXd* out,
                int nt) const;
  // what the column side needs to recompute r in column order (y_by_col == nullptr: y is zero)
  struct ColumnRecompute {
    const Eigen::Ref<const RowMatrixXd>* L;
    const Eigen::Ref<const RowMatrixXd>* R;
    const double* y_by_col;
  };
  void col_side_recompute(const ColumnRecompute& rc, const Eigen::Ref<const RowMatrixXd>& B,
                          RowMatrixXd* out, int nt) const;
  void any_col_side(const double* w, const ColumnRecompute* rc,
                    const Eigen::Ref<const RowMatrixXd>& B, RowMatrixXd* out, int nt) const;
  void sorted_products(const double* w, const ThinRequest& req, RowMatrixXd* right_rows,
                       RowMatrixXd* AV, RowMatrixXd* AtU, int nt,
                       const ColumnRecompute* rc = nullptr) const;
  // The sweep of the sorted pass: r, each row's ||r||^2, the weights w (when w is non-empty)
  // and, when B is given, the row side of w @ B into by_rows, while the entry is in registers.
  void sorted_sweep(const Eigen::Ref<const RowMatrixXd>& L, const Eigen::Ref<const RowMatrixXd>& R,
                    const double* y, double* r, std::vector<double>* w,
                    const Eigen::Ref<const RowMatrixXd>* B, RowMatrixXd* by_rows,
                    std::vector<double>* row_sumsq, int nt) const;

  Index m_, d1_, d2_, nnz_;
  // the constructor's arrays, owned; the raw pointers below point into them (nullptr: absent)
  std::vector<std::int64_t> own_ptr_, own_rows_, own_cols_;
  std::vector<double> own_vals_;
  const std::int64_t* ptr_;
  const std::int64_t* rows_;
  const std::int64_t* cols_;
  const double* vals_;
  double scale_;
  bool symmetric_;
  std::vector<std::int64_t> meas_;  // nonzero -> measurement (only with ptr)
  std::vector<std::int64_t> row_ptr_, by_row_, col_ptr_, by_col_;
  // sorted layout (one nonzero per measurement; then by_col_ is unused and empty): cols of the
  // row-sorted entries; for the column side, the row-sorted positions in column order (groups
  // col_ptr_) and their rows
  std::vector<std::int64_t> sorted_cols_, by_col_sorted_, rows_by_col_;
  // the same indices in 32 bits (then the 64-bit copies above are empty): see
  // narrow_sorted_indices
  std::vector<std::int32_t> sorted_cols32_, rows_by_col32_;
  void narrow_sorted_indices();
  template <class F>
  void with_layout(F&& f) const;
};

// Rank-one: M_i = scale * a_i a_i^T with a_i the rows of A (m x d). r = A(L R^T) - y (y ==
// nullptr: zero) with <M_i, L R^T> = scale (a_i^T L)(R^T a_i); products S @ right and S @ left
// (M_i is symmetric) from per-slice partials folded in slice order. Returns ||r||^2.
double rank_one_residual(const Eigen::Ref<const RowMatrixXd>& A, double scale,
                         const Eigen::Ref<const RowMatrixXd>& L,
                         const Eigen::Ref<const RowMatrixXd>& R, const double* y, double* r,
                         const ThinRequest& req, RowMatrixXd* AV, RowMatrixXd* AtU,
                         int n_threads);
// sum_i v_i M_i = scale * A^T diag(v) A.
void rank_one_adjoint(const Eigen::Ref<const RowMatrixXd>& A, double scale, const double* v,
                      Eigen::Ref<RowMatrixXd> G);

}  // namespace wnsense

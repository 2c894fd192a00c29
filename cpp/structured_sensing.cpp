#include "structured_sensing.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

#include "entry_kernels.hpp"

namespace wnsense {

namespace {
// Stable counting sort of the nonzeros by key: group g holds order[ptr[g] .. ptr[g+1]) in
// increasing nonzero index, so sums over a group run in a fixed order.
void group_by(const std::int64_t* keys, Index nnz, Index n_keys, std::vector<std::int64_t>* ptr,
              std::vector<std::int64_t>* order) {
  ptr->assign(n_keys + 1, 0);
  for (Index t = 0; t < nnz; ++t) ++(*ptr)[keys[t] + 1];
  for (Index g = 0; g < n_keys; ++g) (*ptr)[g + 1] += (*ptr)[g];
  order->resize(nnz);
  std::vector<std::int64_t> next(ptr->begin(), ptr->end() - 1);
  for (Index t = 0; t < nnz; ++t) (*order)[next[keys[t]]++] = t;
}

void check_indices(const std::int64_t* idx, Index n, Index bound, const char* name) {
  for (Index t = 0; t < n; ++t)
    if (idx[t] < 0 || idx[t] >= bound)
      throw std::invalid_argument(std::string(name) + " index out of range: " +
                                  std::to_string(idx[t]) + " not in [0, " +
                                  std::to_string(bound) + ")");
}
}  // namespace

SparseMeasurements::SparseMeasurements(Index m, Index d1, Index d2, Index nnz,
                                       const std::int64_t* ptr, const std::int64_t* rows,
                                       const std::int64_t* cols, const double* vals, double scale,
                                       bool symmetric)
    : m_(m), d1_(d1), d2_(d2), nnz_(nnz), ptr_(nullptr), rows_(nullptr), cols_(nullptr),
      vals_(nullptr), scale_(scale), symmetric_(symmetric) {
  require(m >= 1 && d1 >= 1 && d2 >= 1 && nnz >= 0, "sizes must be positive");
  require(!symmetric || d1 == d2, "symmetric measurements need d1 == d2");
  // Own copies first, then every check on the copies: what is checked is what is used.
  own_rows_.assign(rows, rows + nnz);
  own_cols_.assign(cols, cols + nnz);
  if (vals) own_vals_.assign(vals, vals + nnz);
  if (ptr) {
    own_ptr_.assign(ptr, ptr + m + 1);
    const auto& p = own_ptr_;
    require(p[0] == 0, "indptr must start at 0");
    for (Index i = 0; i < m; ++i) require(p[i] <= p[i + 1], "indptr must not decrease");
    require(p[m] == nnz, "indptr must end at nnz = " + std::to_string(nnz));
    meas_.resize(nnz);
    for (Index i = 0; i < m; ++i)
      for (Index t = p[i]; t < p[i + 1]; ++t) meas_[t] = i;
  } else {
    require(nnz == m, "one nonzero per measurement needs nnz == m");
    require(!vals, "values need indptr (one nonzero per measurement uses `scale`)");
  }
  rows_ = own_rows_.data();
  cols_ = own_cols_.data();
  if (ptr) ptr_ = own_ptr_.data();
  if (vals) vals_ = own_vals_.data();
  check_indices(rows_, nnz, d1, "row");
  check_indices(cols_, nnz, d2, "column");
  group_by(rows_, nnz, d1, &row_ptr_, &by_row_);
  if (ptr) {
    group_by(cols_, nnz, d2, &col_ptr_, &by_col_);
  } else {  // the sorted layout groups the columns itself (no grouping of the user's order)
    sorted_cols_.resize(nnz);
    for (Index q = 0; q < nnz; ++q) sorted_cols_[q] = cols_[by_row_[q]];
    group_by(sorted_cols_.data(), nnz, d2, &col_ptr_, &by_col_sorted_);
    rows_by_col_.resize(nnz);
    std::vector<std::int64_t> row_of(nnz);  // row of each sorted position
    for (Index g = 0; g < d1; ++g)
      for (Index q = row_ptr_[g]; q < row_ptr_[g + 1]; ++q) row_of[q] = g;
    for (Index q = 0; q < nnz; ++q) rows_by_col_[q] = row_of[by_col_sorted_[q]];
    narrow_sorted_indices();
  }
}

// The sweeps stream one index per entry: stored in 32 bits whenever the dimension fits (half the
// bytes; every realistic factor has fewer than 2^31 rows), the 64-bit copies then freed.
void SparseMeasurements::narrow_sorted_indices() {
  constexpr Index kMax = std::numeric_limits<std::int32_t>::max();
  if (d1_ > kMax || d2_ > kMax) return;
  sorted_cols32_.assign(sorted_cols_.begin(), sorted_cols_.end());
  rows_by_col32_.assign(rows_by_col_.begin(), rows_by_col_.end());
  std::vector<std::int64_t>().swap(sorted_cols_);
  std::vector<std::int64_t>().swap(rows_by_col_);
}

// f(layout) with the sorted layout's 32-bit indices when it has them, else the 64-bit ones.
template <class F>
void SparseMeasurements::with_layout(F&& f) const {
  auto layout = [&](const auto& cols, const auto& rows_by_col) {
    using Idx = std::decay_t<decltype(cols[0])>;
    return entry_kernels::Layout<Idx>{d1_, d2_, nnz_, row_ptr_.data(), col_ptr_.data(),
                                      cols.data(), rows_by_col.data(), by_col_sorted_.data(),
                                      scale_, symmetric_};
  };
  if (!sorted_cols32_.empty() || sorted_cols_.empty())
    f(layout(sorted_cols32_, rows_by_col32_));
  else
    f(layout(sorted_cols_, rows_by_col_));
}

// Threads for a pass of `work` = entries x (factor width + 1): one below 2^22 (about 4e5
// entries at k = 10, 1-2 ms on one core), for the reason and with the measurement of the dense
// passes (a region waits for the thread that shares a busy core). The rows and
// columns are summed by one thread each in a fixed order, so the bits do not depend on it.
int SparseMeasurements::team(int n_threads, Index work) const {
  return team_for_work(n_threads, work, kDefaultMinParallelWork);
}

double SparseMeasurements::residual(const Eigen::Ref<const RowMatrixXd>& L,
                                    const Eigen::Ref<const RowMatrixXd>& R, const double* y,
                                    double* r, const ThinRequest& req, RowMatrixXd* AV,
                                    RowMatrixXd* AtU, int n_threads) const {
  if (!ptr_) {  // through the sorted layout: y in, r out, permuted
    std::vector<double> ys(y ? nnz_ : 0), rs(nnz_);
    for (Index q = 0; y && q < nnz_; ++q) ys[q] = y[by_row_[q]];
    const double sumsq =
        residual_sorted(L, R, y ? ys.data() : nullptr, rs.data(), req, AV, AtU, n_threads);
    for (Index q = 0; q < nnz_; ++q) r[by_row_[q]] = rs[q];
    return sumsq;
  }
  const int nt = team(n_threads, (nnz_ + m_) * (L.cols() + 1));
  const std::vector<Index> bounds = slice_bounds(m_);
  const Index n_slices = static_cast<Index>(bounds.size()) - 1;
  std::vector<double> sumsq(n_slices, 0.0);
  const Index k = L.cols(), ldl = L.outerStride(), ldr = R.outerStride();
  const double* Lp = L.data();
  const double* Rp = R.data();
  auto entry = [&](Index t) {  // <e_j e_k^T, L R^T> (symmetrized)
    const auto j = rows_[t], c = cols_[t];
    const double z = entry_kernels::dot_row<0>(Lp + j * ldl, Rp + c * ldr, k);
    return symmetric_ ? 0.5 * (z + entry_kernels::dot_row<0>(Lp + c * ldl, Rp + j * ldr, k)) : z;
  };
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (Index s = 0; s < n_slices; ++s) {
    double ss = 0.0;
    for (Index i = bounds[s]; i < bounds[s + 1]; ++i) {
      double z = 0.0;
      if (ptr_) {
        for (Index t = ptr_[i]; t < ptr_[i + 1]; ++t) z += value(t) * entry(t);
      } else {
        z = value(i) * entry(i);
      }
      const double ri = y ? z - y[i] : z;
      r[i] = ri;
      ss += ri * ri;
    }
    sumsq[s] = ss;
  }
  if (req.any()) products(weights(r, nt), req, AV, AtU, nt);
  return fold_sumsq(sumsq);
}

namespace {
entry_kernels::Rows rows_of(const Eigen::Ref<const RowMatrixXd>& M) {
  return {M.data(), M.outerStride(), M.cols()};
}
}  // namespace

// Sorted layout (one nonzero per measurement): the kernels of entry_kernels.hpp, at the factor
// width compiled for k when there is one. Weights w[q] = scale * v_q in sorted order.
// Row side: out(g) = sum over the entries q of row g of w[q] B[col_q] (sequential in q).
void SparseMeasurements::row_side(const double* w, const Eigen::Ref<const RowMatrixXd>& B,
                                  RowMatrixXd* out, int nt) const {
  out->setZero(d1_, B.cols());
  with_layout([&](const auto& S) {
    entry_kernels::with_width(S, B.cols(), [&](auto K) {
      entry_kernels::row_side<decltype(K)::value>(S, w, rows_of(B), out->data(), nt);
    });
  });
}

// Column side: out(c) = sum over the entries of column c of w[q] B[row_q] (the rows are read
// from a contiguous copy in column order; w[q] is the one gathered access).
void SparseMeasurements::col_side(const double* w, const Eigen::Ref<const RowMatrixXd>& B,
                                  RowMatrixXd* out, int nt) const {
  out->setZero(d2_, B.cols());
  with_layout([&](const auto& S) {
    entry_kernels::with_width(S, B.cols(), [&](auto K) {
      entry_kernels::col_side<decltype(K)::value>(S, w, rows_of(B), out->data(), nt);
    });
  });
}

void SparseMeasurements::col_side_recompute(const ColumnRecompute& rc,
                                            const Eigen::Ref<const RowMatrixXd>& B,
                                            RowMatrixXd* out, int nt) const {
  out->setZero(d2_, B.cols());
  const Index k = rc.L->cols();
  with_layout([&](const auto& S) {
    entry_kernels::with_width(S, B.cols() == k ? k : 0, [&](auto K) {
      entry_kernels::col_side_recompute<decltype(K)::value>(
          S, rows_of(*rc.L), rows_of(*rc.R), rc.y_by_col, rows_of(B), out->data(), nt);
    });
  });
}

void SparseMeasurements::any_col_side(const double* w, const ColumnRecompute* rc,
                                      const Eigen::Ref<const RowMatrixXd>& B, RowMatrixXd* out,
                                      int nt) const {
  if (rc)
    col_side_recompute(*rc, B, out, nt);
  else
    col_side(w, B, out, nt);
}

// A*(v) @ right and A*(v)^T @ left from sorted weights; `right_rows` is the row side of
// A*(v) @ right when the caller already has it (the fused sweep of residual_sorted).
void SparseMeasurements::sorted_products(const double* w, const ThinRequest& req,
                                         RowMatrixXd* right_rows, RowMatrixXd* AV,
                                         RowMatrixXd* AtU, int nt,
                                         const ColumnRecompute* rc) const {
  // symmetric: S @ B = (A* B + A*^T B) / 2, the row side plus the column side, halved
  auto both = [&](const Eigen::Ref<const RowMatrixXd>& B, RowMatrixXd* rows_done,
                  RowMatrixXd* out) {
    RowMatrixXd by_rows, by_cols;
    if (rows_done) by_rows.swap(*rows_done); else row_side(w, B, &by_rows, nt);
    any_col_side(w, rc, B, &by_cols, nt);
    *out = 0.5 * (by_rows + by_cols);
  };
  if (req.right) {
    if (symmetric_)
      both(*req.right, right_rows, AV);
    else if (right_rows)
      AV->swap(*right_rows);
    else
      row_side(w, *req.right, AV, nt);
  }
  if (req.left) {
    if (symmetric_)
      both(*req.left, nullptr, AtU);
    else
      any_col_side(w, rc, *req.left, AtU, nt);
  }
}

void SparseMeasurements::sorted_sweep(const Eigen::Ref<const RowMatrixXd>& L,
                                      const Eigen::Ref<const RowMatrixXd>& R, const double* y,
                                      double* r, std::vector<double>* w_out,
                                      const Eigen::Ref<const RowMatrixXd>* B, RowMatrixXd* by_rows,
                                      std::vector<double>* row_sumsq, int nt) const {
  const Index k = L.cols();
  double* w = w_out->empty() ? nullptr : w_out->data();
  const entry_kernels::Rows b = B ? rows_of(*B) : entry_kernels::Rows{nullptr, 0, k};
  if (B) by_rows->setZero(d1_, B->cols());
  row_sumsq->assign(d1_, 0.0);
  with_layout([&](const auto& S) {
    entry_kernels::with_width(S, b.cols == k ? k : 0, [&](auto K) {
      entry_kernels::sweep<decltype(K)::value>(S, rows_of(L), rows_of(R), y, r, w, b,
                                B ? by_rows->data() : nullptr, row_sumsq->data(), nt);
    });
  });
}

double SparseMeasurements::residual_sorted(const Eigen::Ref<const RowMatrixXd>& L,
                                           const Eigen::Ref<const RowMatrixXd>& R,
                                           const double* y, double* r, const ThinRequest& req,
                                           RowMatrixXd* AV, RowMatrixXd* AtU, int n_threads,
                                           const double* y_by_col) const {
  require(!ptr_, "the sorted pass needs one nonzero per measurement");
  const int nt = team(n_threads, nnz_ * (L.cols() + 1));
  // The column side recomputes r in column order when it can (y absent or given in that order);
  // the weights are then needed only for a second row side (symmetric, both products).
  const bool recompute = !y || y_by_col;
  const ColumnRecompute rc{&L, &R, y_by_col};
  const bool need_w = req.any() && (!recompute || (symmetric_ && req.left));
  std::vector<double> w(need_w ? nnz_ : 0);
  // one sweep over the row-sorted entries: r, ||r||^2 per row, the weights, and the row side
  // of A*(r) @ right while the entry is in registers
  RowMatrixXd by_rows;
  std::vector<double> row_sumsq;
  sorted_sweep(L, R, y, r, &w, req.right, &by_rows, &row_sumsq, nt);
  if (req.any())
    sorted_products(w.data(), req, req.right ? &by_rows : nullptr, AV, AtU, nt,
                    recompute ? &rc : nullptr);
  // ||r||^2: the rows' sums folded in row order (independent of the thread count)
  return fold_sumsq(row_sumsq);
}

void SparseMeasurements::residual_sides(
    const Eigen::Ref<const RowMatrixXd>& L, const Eigen::Ref<const RowMatrixXd>& R,
    const double* y, double* r, std::vector<double>* row_sumsq,
    const std::vector<const Eigen::Ref<const RowMatrixXd>*>& row_B,
    std::vector<RowMatrixXd>* row_out,
    const std::vector<const Eigen::Ref<const RowMatrixXd>*>& col_B,
    std::vector<RowMatrixXd>* col_out, int n_threads) const {
  require(!ptr_, "the sorted pass needs one nonzero per measurement");
  const int nt = team(n_threads, nnz_ * (L.cols() + 1));
  const bool any = !row_B.empty() || !col_B.empty();
  std::vector<double> w(any ? nnz_ : 0);
  row_out->assign(row_B.size(), RowMatrixXd());
  col_out->assign(col_B.size(), RowMatrixXd());
  // the first row side fused into the sweep, as residual_sorted fuses A*(r) @ right
  sorted_sweep(L, R, y, r, &w, row_B.empty() ? nullptr : row_B[0],
               row_B.empty() ? nullptr : &(*row_out)[0], row_sumsq, nt);
  for (std::size_t i = 1; i < row_B.size(); ++i) row_side(w.data(), *row_B[i], &(*row_out)[i], nt);
  for (std::size_t i = 0; i < col_B.size(); ++i) col_side(w.data(), *col_B[i], &(*col_out)[i], nt);
}

void SparseMeasurements::adjoint_sides(
    const double* v, const std::vector<const Eigen::Ref<const RowMatrixXd>*>& row_B,
    std::vector<RowMatrixXd>* row_out,
    const std::vector<const Eigen::Ref<const RowMatrixXd>*>& col_B,
    std::vector<RowMatrixXd>* col_out, int n_threads) const {
  require(!ptr_, "the sorted layout needs one nonzero per measurement");
  Index kmax = 1;
  for (auto* B : row_B) kmax = std::max(kmax, B->cols());
  for (auto* B : col_B) kmax = std::max(kmax, B->cols());
  const int nt = team(n_threads, nnz_ * kmax);
  std::vector<double> w(nnz_);
  for (Index q = 0; q < nnz_; ++q) w[q] = scale_ * v[q];
  row_out->assign(row_B.size(), RowMatrixXd());
  col_out->assign(col_B.size(), RowMatrixXd());
  for (std::size_t i = 0; i < row_B.size(); ++i) row_side(w.data(), *row_B[i], &(*row_out)[i], nt);
  for (std::size_t i = 0; i < col_B.size(); ++i) col_side(w.data(), *col_B[i], &(*col_out)[i], nt);
}

void SparseMeasurements::adjoint_products(const double* v, const ThinRequest& req,
                                          RowMatrixXd* AV, RowMatrixXd* AtU,
                                          int n_threads) const {
  const Index k = (req.right ? req.right->cols() : 0) + (req.left ? req.left->cols() : 0);
  const int nt = team(n_threads, nnz_ * (k + 1));
  if (!ptr_) {
    std::vector<double> w(nnz_);
    for (Index q = 0; q < nnz_; ++q) w[q] = scale_ * v[by_row_[q]];
    sorted_products(w.data(), req, nullptr, AV, AtU, nt);
    return;
  }
  products(weights(v, nt), req, AV, AtU, nt);
}

std::vector<double> SparseMeasurements::weights(const double* v, int nt) const {
  std::vector<double> w(nnz_);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (Index t = 0; t < nnz_; ++t) w[t] = value(t) * v[measurement(t)];
  return w;
}

void SparseMeasurements::grouped(const std::vector<std::int64_t>& group_ptr,
                                 const std::vector<std::int64_t>& order,
                                 const std::int64_t* other, const std::vector<double>& w,
                                 const Eigen::Ref<const RowMatrixXd>& B, RowMatrixXd* out,
                                 int nt) const {
  const Index n_groups = static_cast<Index>(group_ptr.size()) - 1;
  const Index k = B.cols(), ldb = B.outerStride();
  out->setZero(n_groups, k);
  const double* Bp = B.data();
  double* op = out->data();
  // dynamic: rows of real data (users, items) have very different numbers of entries; each
  // output row is still summed by one thread in group order, so the result does not change
#pragma omp parallel for schedule(dynamic, 64) num_threads(nt) if (nt > 1)
  for (Index g = 0; g < n_groups; ++g) {
    double* row = op + g * k;
    for (Index q = group_ptr[g]; q < group_ptr[g + 1]; ++q) {
      const Index t = order[q];
      const double wt = w[t];
      const double* b = Bp + other[t] * ldb;
      for (Index c = 0; c < k; ++c) row[c] += wt * b[c];
    }
  }
}

void SparseMeasurements::products(const std::vector<double>& w, const ThinRequest& req,
                                  RowMatrixXd* AV, RowMatrixXd* AtU, int nt) const {
  // A*(v) @ B: row j sums the nonzeros of row j (w_t B[col_t]); A*(v)^T @ B: row k sums the
  // nonzeros of column k (w_t B[row_t]); sym(A*(v)) @ B is the mean of the two.
  auto apply = [&](const Eigen::Ref<const RowMatrixXd>& B, bool transposed, RowMatrixXd* out) {
    if (!symmetric_) {
      if (transposed)
        grouped(col_ptr_, by_col_, rows_, w, B, out, nt);
      else
        grouped(row_ptr_, by_row_, cols_, w, B, out, nt);
      return;
    }
    RowMatrixXd by_cols;
    grouped(row_ptr_, by_row_, cols_, w, B, out, nt);
    grouped(col_ptr_, by_col_, rows_, w, B, &by_cols, nt);
    *out = 0.5 * (*out + by_cols);
  };
  if (req.right) apply(*req.right, false, AV);
  if (req.left) apply(*req.left, true, AtU);
}

void SparseMeasurements::forward_dense(const Eigen::Ref<const RowMatrixXd>& Z, double* out) const {
  auto entry = [&](Index t) {
    const auto j = rows_[t], k = cols_[t];
    return symmetric_ ? 0.5 * (Z(j, k) + Z(k, j)) : Z(j, k);
  };
  for (Index i = 0; i < m_; ++i) {
    double z = 0.0;
    if (ptr_) {
      for (Index t = ptr_[i]; t < ptr_[i + 1]; ++t) z += value(t) * entry(t);
    } else {
      z = value(i) * entry(i);
    }
    out[i] = z;
  }
}

void SparseMeasurements::adjoint_dense(const double* v, Eigen::Ref<RowMatrixXd> G) const {
  G.setZero();
  // Sequential scatter: repeated entries add up in index order (deterministic).
  for (Index t = 0; t < nnz_; ++t) {
    const double c = value(t) * v[measurement(t)];
    const auto j = rows_[t], k = cols_[t];
    if (symmetric_) {
      G(j, k) += 0.5 * c;
      G(k, j) += 0.5 * c;
    } else {
      G(j, k) += c;
    }
  }
}

double rank_one_residual(const Eigen::Ref<const RowMatrixXd>& A, double scale,
                         const Eigen::Ref<const RowMatrixXd>& L,
                         const Eigen::Ref<const RowMatrixXd>& R, const double* y, double* r,
                         const ThinRequest& req, RowMatrixXd* AV, RowMatrixXd* AtU,
                         int n_threads) {
  const Index m = A.rows();
  const std::vector<Index> bounds = slice_bounds(m);
  const Index n_slices = static_cast<Index>(bounds.size()) - 1;
  // one thread below 2^22 units of work, as the other passes (per-slice partials: same bits)
  const Index k = (req.right ? req.right->cols() : 0) + (req.left ? req.left->cols() : 0);
  const int nt = static_cast<int>(std::min<Index>(
      team_for_work(n_threads, m * A.cols() * (L.cols() + k), kDefaultMinParallelWork), n_slices));
  std::vector<double> sumsq(n_slices, 0.0);
  std::vector<RowMatrixXd> PV(req.right ? n_slices : 0), PU(req.left ? n_slices : 0);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)
  for (Index s = 0; s < n_slices; ++s) {
    const Index b = bounds[s], n = bounds[s + 1] - b;
    const auto As = A.middleRows(b, n);
    const RowMatrixXd AL = As * L, AR = As * R;
    VectorXd c(n);  // scale * r_i: the weight of a_i a_i^T in A*(r)
    double ss = 0.0;
    for (Index i = 0; i < n; ++i) {
      const double z = scale * AL.row(i).dot(AR.row(i));
      const double ri = y ? z - y[b + i] : z;
      r[b + i] = ri;
      ss += ri * ri;
      c[i] = scale * ri;
    }
    sumsq[s] = ss;
    // sum_i c_i a_i (a_i^T B) = A_s^T diag(c) A_s B
    auto product = [&](const Eigen::Ref<const RowMatrixXd>& B, RowMatrixXd* out) {
      RowMatrixXd W = As * B;
      W = c.asDiagonal() * W;
      out->noalias() = As.transpose() * W;
    };
    if (req.right) product(*req.right, &PV[s]);
    if (req.left) product(*req.left, &PU[s]);
  }
  if (req.right) *AV = fold_products(PV);
  if (req.left) *AtU = fold_products(PU);
  return fold_sumsq(sumsq);
}

void rank_one_adjoint(const Eigen::Ref<const RowMatrixXd>& A, double scale, const double* v,
                      Eigen::Ref<RowMatrixXd> G) {
  const Eigen::Map<const VectorXd> vv(v, A.rows());
  RowMatrixXd VA = vv.asDiagonal() * A;
  G.noalias() = scale * (A.transpose() * VA);
}

}  // namespace wnsense

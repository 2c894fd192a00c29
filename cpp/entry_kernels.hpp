// The passes over observed entries in their sorted layout (one nonzero per measurement): the
// sweep over the entries in row order and the sides of the adjoint in row or column order.
// Templates on the factor width (K > 0: known at compile time, the loops over a factor row are
// unrolled and the k-wide accumulations vectorized; K == 0: the width at run time) and on the
// type of the stored indices (32-bit whenever the dimension fits: half the index bytes a sweep
// streams). Every variant does the same floating-point operations in the same order (a dot
// product summed from column 0 up, each output row summed over its entries in layout order by
// one thread), so the bits do not depend on the width's variant, the index type or the threads.
#pragma once
#include <cstdint>
#include <type_traits>
#include <utility>

#include "common.hpp"

namespace wnsense {
namespace entry_kernels {

// The sorted layout: entries sorted by row (stable), row g holds positions
// [row_ptr[g], row_ptr[g+1]) with columns cols[q]; column c holds the row-sorted positions
// pos_by_col[col_ptr[c] .. col_ptr[c+1]) in increasing order, whose rows are rows_by_col[...].
template <class Idx>
struct Layout {
  using index_type = Idx;
  Index d1, d2, nnz;
  const std::int64_t* row_ptr;
  const std::int64_t* col_ptr;
  const Idx* cols;                 // column of each row-sorted position
  const Idx* rows_by_col;          // row of each column-ordered position
  const std::int64_t* pos_by_col;  // row-sorted position of each column-ordered position
  double scale;
  bool symmetric;
};

// A thin factor: row i at p + i * ld, `cols` doubles (K when K > 0)
struct Rows {
  const double* p;
  Index ld, cols;
};

template <int K>
inline Index width(Index runtime) {
  return K > 0 ? K : runtime;
}

// <a, b> over k doubles, summed from index 0 up (one fixed order for every K)
template <int K>
inline double dot_row(const double* a, const double* b, Index k) {
  double s = 0.0;
  for (Index c = 0; c < width<K>(k); ++c) s += a[c] * b[c];
  return s;
}

// r of entry (g, c): scale <e_g e_c^T, L R^T> (symmetrized: lc, rg are L[c], R[g]) minus y
// (yq == nullptr: zero). The row-order sweep and the column-order recompute both call this, so
// r is the same bits in either order.
template <int K>
inline double entry_residual(const double* lg, const double* rc, const double* lc,
                             const double* rg, Index k, double scale, bool symmetric,
                             const double* yq) {
  double z = dot_row<K>(lg, rc, k);
  if (symmetric) z = 0.5 * (z + dot_row<K>(lc, rg, k));
  z *= scale;
  return yq ? z - *yq : z;
}

// The factor rows a sweep gathers at random (one per entry) are prefetched this many entries
// ahead: the sweep is bound by the latency of those gathers (from the last-level cache or, when
// other processes share it, from memory), not by the index and value streams. Measured at
// d = 1e5, m = 1e7, k = 10 on a loaded 2-core machine (CPU time per entry, one thread): 16 ahead
// 7.9 ns, 32 ahead 5.6 ns, 64 ahead 5.3 ns, 128 ahead 5.1 ns.
constexpr Index kGatherAhead = 64;

// Prefetch the row of k doubles at base + idx * ld: every cache line it touches (prefetching
// only the first made the sweep 3-4x slower once the rows came from memory; only the first and
// the last, 8x slower at k = 20, whose rows span three lines). Only the address is formed (as an
// integer), the row is never read here.
inline void prefetch_row(const double* base, std::int64_t idx, Index ld, Index k) {
#if defined(__GNUC__) || defined(__clang__)
  // a, a + 64, ... and the last element: every line whatever the row's alignment, with a trip
  // count fixed by k (a loop over the lines themselves depends on the alignment, a branch
  // mispredicted every other entry: 3x slower at k = 5)
  const auto a = reinterpret_cast<std::uintptr_t>(base) +
                 static_cast<std::uintptr_t>(idx * ld) * sizeof(double);
  const Index span = (k - 1) * static_cast<Index>(sizeof(double));
  for (Index off = 0; off < span; off += 64)
    __builtin_prefetch(reinterpret_cast<const void*>(a + off));
  __builtin_prefetch(reinterpret_cast<const void*>(a + span));
#endif
}

// out[0..kb) += w * b[0..kb): element-wise (no reordering), vectorized over the width
template <int K>
inline void axpy_row(double w, const double* b, double* out, Index kb) {
  for (Index j = 0; j < width<K>(kb); ++j) out[j] += w * b[j];
}

// An output row summed over a group's entries: in registers when the width is compiled (a row in
// memory chains every entry's add through a store and a reload: the column sweep at k = 10 took
// about 2x the row sweep's time that way), else in place. Starts at zero, like the memory it
// replaces, and adds in the same order: the same bits.
template <int K>
struct RowSum {
  double local[K > 0 ? K : 1];
  double* target;
  double* acc;
  RowSum(double* out, Index kb) : target(out), acc(K > 0 ? local : out) {
    if (K > 0)
      for (int j = 0; j < K; ++j) local[j] = 0.0;
    (void)kb;
  }
  void add(double w, const double* b, Index kb) { axpy_row<K>(w, b, acc, kb); }
  void store() {
    if (K > 0)
      for (int j = 0; j < K; ++j) target[j] = local[j];
  }
};

// The row-order sweep: r, each row's ||r||^2, the weights w = scale r (w != nullptr) and, when B
// is given (B.p != nullptr), the row side sum_q w_q B[col_q] of each row into by_rows (d1 x kb,
// zeroed by the caller). K: the width of L, R and B (0 when they differ or are not compiled).
template <int K, class Idx>
void sweep(const Layout<Idx>& S, Rows L, Rows R, const double* y, double* r, double* w,
           Rows B, double* by_rows, double* row_sumsq, int nt) {
  const Index k = width<K>(L.cols), kb = width<K>(B.cols);
  const bool sym = S.symmetric;
#pragma omp parallel for schedule(dynamic, 64) num_threads(nt) if (nt > 1)
  for (Index g = 0; g < S.d1; ++g) {
    const double* lg = L.p + g * L.ld;
    const double* rg = sym ? R.p + g * R.ld : nullptr;
    const bool rows_side = B.p != nullptr;
    RowSum<K> out(rows_side ? by_rows + g * kb : nullptr, kb);
    double ss = 0.0;
    const Index end = S.row_ptr[g + 1];
    for (Index q = S.row_ptr[g]; q < end; ++q) {
      if (q + kGatherAhead < S.nnz) {
        const std::int64_t ahead = S.cols[q + kGatherAhead];
        prefetch_row(R.p, ahead, R.ld, k);
        if (B.p && B.p != R.p) prefetch_row(B.p, ahead, B.ld, kb);
      }
      const std::int64_t c = S.cols[q];
      const double rq = entry_residual<K>(lg, R.p + c * R.ld, sym ? L.p + c * L.ld : nullptr, rg,
                                          k, S.scale, sym, y ? y + q : nullptr);
      if (r) r[q] = rq;
      ss += rq * rq;
      const double wq = S.scale * rq;
      if (w) w[q] = wq;
      if (rows_side) out.add(wq, B.p + c * B.ld, kb);
    }
    if (rows_side) out.store();
    row_sumsq[g] = ss;
  }
}

// The column side with w recomputed from the factors in column order instead of gathered: once
// the entries outgrow the caches the gather of w[q] is a random DRAM access per entry, while the
// factor rows it needs instead (L[row_q], and B[row_q], usually the same rows) stay cached. Same
// expression as the sweep, so the same bits. y_by_col == nullptr: y is zero. out: d2 x kb, zeroed.
template <int K, class Idx>
void col_side_recompute(const Layout<Idx>& S, Rows L, Rows R, const double* y_by_col, Rows B,
                        double* out, int nt) {
  const Index k = width<K>(L.cols), kb = width<K>(B.cols);
  const bool sym = S.symmetric;
#pragma omp parallel for schedule(dynamic, 64) num_threads(nt) if (nt > 1)
  for (Index c = 0; c < S.d2; ++c) {
    RowSum<K> o(out + c * kb, kb);
    const double* rcol = R.p + c * R.ld;
    const double* lcol = sym ? L.p + c * L.ld : nullptr;
    const Index end = S.col_ptr[c + 1];
    for (Index q = S.col_ptr[c]; q < end; ++q) {
      if (q + kGatherAhead < S.nnz) {
        const std::int64_t ahead = S.rows_by_col[q + kGatherAhead];
        prefetch_row(L.p, ahead, L.ld, k);
        if (B.p != L.p) prefetch_row(B.p, ahead, B.ld, kb);
      }
      const std::int64_t g = S.rows_by_col[q];
      const double* rg = sym ? R.p + g * R.ld : nullptr;
      const double rq = entry_residual<K>(L.p + g * L.ld, rcol, lcol, rg, k, S.scale, sym,
                                          y_by_col ? y_by_col + q : nullptr);
      o.add(S.scale * rq, B.p + g * B.ld, kb);
    }
    o.store();
  }
}

// Row side from given weights (row-sorted order): out(g) = sum over row g's entries of
// w[q] B[col_q]. out: d1 x kb, zeroed.
template <int K, class Idx>
void row_side(const Layout<Idx>& S, const double* w, Rows B, double* out, int nt) {
  const Index kb = width<K>(B.cols);
#pragma omp parallel for schedule(dynamic, 64) num_threads(nt) if (nt > 1)
  for (Index g = 0; g < S.d1; ++g) {
    RowSum<K> o(out + g * kb, kb);
    const Index end = S.row_ptr[g + 1];
    for (Index q = S.row_ptr[g]; q < end; ++q) {
      if (q + kGatherAhead < S.nnz) prefetch_row(B.p, S.cols[q + kGatherAhead], B.ld, kb);
      o.add(w[q], B.p + static_cast<std::int64_t>(S.cols[q]) * B.ld, kb);
    }
    o.store();
  }
}

// Column side from given weights: out(c) = sum over column c's entries of w[q] B[row_q] (w[q]
// is the one gathered access). out: d2 x kb, zeroed.
template <int K, class Idx>
void col_side(const Layout<Idx>& S, const double* w, Rows B, double* out, int nt) {
  const Index kb = width<K>(B.cols);
#pragma omp parallel for schedule(dynamic, 64) num_threads(nt) if (nt > 1)
  for (Index c = 0; c < S.d2; ++c) {
    RowSum<K> o(out + c * kb, kb);
    const Index end = S.col_ptr[c + 1];
    for (Index q = S.col_ptr[c]; q < end; ++q) {
      if (q + kGatherAhead < S.nnz) prefetch_row(B.p, S.rows_by_col[q + kGatherAhead], B.ld, kb);
      o.add(w[S.pos_by_col[q]], B.p + static_cast<std::int64_t>(S.rows_by_col[q]) * B.ld, kb);
    }
    o.store();
  }
}

// f(std::integral_constant<int, K>{}) with K = k for the widths compiled (1..20: the factor
// widths of completion, r* up to 10 searched at up to twice that), K = 0 otherwise; always 0 for
// a layout of 64-bit indices (dimensions past 2^31: the general loops suffice there).
template <class Idx, class F>
void with_width(const Layout<Idx>&, Index k, F&& f) {
  if constexpr (sizeof(Idx) == 8) {
    f(std::integral_constant<int, 0>{});
    return;
  }
  switch (k) {
#define WNSENSE_WIDTH(n) \
  case n:                \
    return f(std::integral_constant<int, n>{});
    WNSENSE_WIDTH(1) WNSENSE_WIDTH(2) WNSENSE_WIDTH(3) WNSENSE_WIDTH(4) WNSENSE_WIDTH(5)
    WNSENSE_WIDTH(6) WNSENSE_WIDTH(7) WNSENSE_WIDTH(8) WNSENSE_WIDTH(9) WNSENSE_WIDTH(10)
    WNSENSE_WIDTH(11) WNSENSE_WIDTH(12) WNSENSE_WIDTH(13) WNSENSE_WIDTH(14) WNSENSE_WIDTH(15)
    WNSENSE_WIDTH(16) WNSENSE_WIDTH(17) WNSENSE_WIDTH(18) WNSENSE_WIDTH(19) WNSENSE_WIDTH(20)
#undef WNSENSE_WIDTH
    default:
      return f(std::integral_constant<int, 0>{});
  }
}

}  // namespace entry_kernels
}  // namespace wnsense

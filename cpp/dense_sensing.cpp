#include "dense_sensing.hpp"

#include <vector>

#include "dense_kernels.hpp"

namespace wnsense {

namespace {
template <class T>
const DenseKernelTable<T>& kernels();
template <>
const DenseKernelTable<double>& kernels<double>() { return dense_kernels_f64(); }
template <>
const DenseKernelTable<float>& kernels<float>() { return dense_kernels_f32(); }

// Rows [begin, end) of slice s out of n_slices over m rows; slice boundaries are multiples of 4
// so that every slice runs the 4-row blocked kernel on the same row groups.
void slice_range(Index m, Index n_slices, Index s, Index* begin, Index* end) {
  const Index blocks = (m + 3) / 4;
  *begin = std::min(m, 4 * ((blocks * s) / n_slices));
  *end = std::min(m, 4 * ((blocks * (s + 1)) / n_slices));
}
// Threads for a pass over n_slices slices of `work` stored numbers, never more than the slices.
// By default one below kDefaultMinParallelWork = 2^22 numbers (32 MB of float64, about 1.5 ms
// on one core): waking a team costs little on an idle machine, but when another process keeps
// a core busy every region waits for the thread that shares its core. On 2 cores with one taken, the pass of the Quick start's
// operator (d = 40, m = 960: 1.5e6 numbers) took 1.3-1.4x longer on two threads than on one, and
// a 1000-iteration solve on it 7x; from 6e6 numbers up two threads were faster under that load
// (0.56-0.79x). Results do not depend on it: the slices are fixed by m and each slice is summed
// by one thread, whichever takes it (schedule(dynamic): a thread slowed by a busy core takes
// fewer slices).
int team_size(int n_threads, Index n_slices, Index work) {
  return static_cast<int>(
      std::min<Index>(team_for_work(n_threads, work, kDefaultMinParallelWork), n_slices));
}
}  // namespace

Index reduction_slices(Index m) {
  // Enough slices to balance up to 64 threads (and to split an operator over up to 64 shards
  // holding whole slices), each of at least 256 rows, so that the per-slice thin products
  // (n_slices * d1 * d2 * k flops) stay a few percent of the pass (m * d1 * d2 numbers read).
  const Index by_size = (m + 255) / 256;
  return std::max<Index>(1, std::min<Index>(64, by_size));
}

void matrix_to_weights(const DenseLayout& L, const Eigen::Ref<const RowMatrixXd>& Z,
                       Eigen::Ref<VectorXd> w) {
  if (!L.packed) {
    for (Index j = 0; j < L.d1; ++j)
      for (Index k = 0; k < L.d2; ++k) w[j * L.d2 + k] = Z(j, k);
    return;
  }
  Index t = 0;
  for (Index j = 0; j < L.d1; ++j) {
    w[t++] = Z(j, j);
    for (Index k = j + 1; k < L.d1; ++k) w[t++] = Z(j, k) + Z(k, j);
  }
}

void accumulator_to_matrix(const DenseLayout& L, const Eigen::Ref<const VectorXd>& acc,
                           Eigen::Ref<RowMatrixXd> G) {
  if (!L.packed) {
    for (Index j = 0; j < L.d1; ++j)
      for (Index k = 0; k < L.d2; ++k) G(j, k) = acc[j * L.d2 + k];
    return;
  }
  Index t = 0;
  for (Index j = 0; j < L.d1; ++j) {
    G(j, j) = acc[t++];
    for (Index k = j + 1; k < L.d1; ++k) G(j, k) = G(k, j) = acc[t++];
  }
}

template <class T>
void dense_forward(const T* data, Index m, const DenseLayout& L,
                   const Eigen::Ref<const RowMatrixXd>& Z, Eigen::Ref<VectorXd> out,
                   int n_threads) {
  const Index p = L.stored_per_row();
  VectorXd w(p);
  matrix_to_weights(L, Z, w);
  const auto& K = kernels<T>();
  const Index n_slices = reduction_slices(m);
  const int team = team_size(n_threads, n_slices, m * p);
  double* o = out.data();
  const double* wp = w.data();
#pragma omp parallel for schedule(dynamic, 1) num_threads(team) if (team > 1)
  for (Index s = 0; s < n_slices; ++s) {
    Index b, e;
    slice_range(m, n_slices, s, &b, &e);
    if (e > b) K.forward(data + b * p, e - b, p, wp, o + b);
  }
}

namespace {
// Sum the per-slice accumulators in slice order: the reduction that makes results independent
// of the thread count.
void reduce_slices(const std::vector<VectorXd>& parts, VectorXd* total) {
  *total = parts[0];
  for (std::size_t s = 1; s < parts.size(); ++s) *total += parts[s];
}
}  // namespace

template <class T>
void dense_adjoint(const T* data, Index m, const DenseLayout& L,
                   const Eigen::Ref<const VectorXd>& v, Eigen::Ref<RowMatrixXd> G,
                   int n_threads) {
  const Index p = L.stored_per_row();
  const auto& K = kernels<T>();
  const Index n_slices = reduction_slices(m);
  const int team = team_size(n_threads, n_slices, m * p);
  std::vector<VectorXd> parts(n_slices);
  const double* vp = v.data();
#pragma omp parallel for schedule(dynamic, 1) num_threads(team) if (team > 1)
  for (Index s = 0; s < n_slices; ++s) {
    Index b, e;
    slice_range(m, n_slices, s, &b, &e);
    parts[s] = VectorXd::Zero(p);  // first touch by the thread that uses it
    if (e > b) K.adjoint(data + b * p, e - b, p, vp + b, parts[s].data());
  }
  VectorXd acc;
  reduce_slices(parts, &acc);
  accumulator_to_matrix(L, acc, G);
}

namespace {
// The thin products of one slice's adjoint, accumulated in `acc` (length p): A_s* @ right and
// A_s*^T @ left, or S_s @ right and S_s @ left with S_s = sym(A_s*) when symmetrizing. The
// slice's d1 x d2 adjoint is the size of one measurement; it never leaves this function.
// Per-thread scratch of the slice loop (the slice's accumulator and its d1 x d2 adjoint),
// reused across slices and passes instead of allocated per slice: with a fixed malloc trim
// threshold (Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers) every such block
// was mapped and page-faulted afresh, 12x the page faults and 40% more time per pass at d=300.
struct SliceScratch {
  VectorXd acc;
  RowMatrixXd G, S;
};

SliceScratch& slice_scratch() {
  thread_local SliceScratch scratch;  // first touched by the thread that uses it
  return scratch;
}

void slice_products(const DenseLayout& L, const VectorXd& acc, const ThinRequest& req,
                    RowMatrixXd* AV, RowMatrixXd* AtU) {
  SliceScratch& sc = slice_scratch();
  RowMatrixXd& G = sc.G;
  G.resize(L.d1, L.d2);
  accumulator_to_matrix(L, acc, G);
  if (req.symmetrize && !L.packed) {  // packed slices are symmetric by construction
    sc.S.resize(L.d1, L.d2);
    sc.S.noalias() = 0.5 * (G + G.transpose());
    G.swap(sc.S);
  }
  if (req.right) AV->noalias() = G * (*req.right);
  if (req.left) {
    if (req.symmetrize)
      AtU->noalias() = G * (*req.left);  // S^T = S exactly
    else
      AtU->noalias() = G.transpose() * (*req.left);
  }
}

// Shared driver of the two per-slice passes: `run(slice, begin, end, acc)` streams the slice's
// rows (acc == nullptr when no product is asked) and returns its ||r||^2.
template <class Run>
void for_each_slice(const DenseLayout& L, const std::vector<Index>& bounds,
                    const ThinRequest& req, SliceResults* out, int n_threads, Run run) {
  const Index p = L.stored_per_row();
  const Index n_slices = static_cast<Index>(bounds.size()) - 1;
  const int team = team_size(n_threads, n_slices, (bounds.back() - bounds.front()) * p);
  out->sumsq.assign(n_slices, 0.0);
  out->AV.assign(req.right ? n_slices : 0, RowMatrixXd());
  out->AtU.assign(req.left ? n_slices : 0, RowMatrixXd());
#pragma omp parallel for schedule(dynamic, 1) num_threads(team) if (team > 1)
  for (Index s = 0; s < n_slices; ++s) {
    VectorXd& acc = slice_scratch().acc;
    if (req.any()) acc.setZero(p);
    const Index b = bounds[s], e = bounds[s + 1];
    if (e > b) out->sumsq[s] = run(b, e, req.any() ? acc.data() : nullptr);
    if (req.any())
      slice_products(L, acc, req, req.right ? &out->AV[s] : nullptr,
                     req.left ? &out->AtU[s] : nullptr);
  }
}
}  // namespace

template <class T>
void dense_residual_slices(const T* data, const DenseLayout& L, const std::vector<Index>& bounds,
                           const Eigen::Ref<const VectorXd>& w, const double* y, double* r,
                           const ThinRequest& req, SliceResults* out, int n_threads) {
  const Index p = L.stored_per_row();
  const auto& K = kernels<T>();
  // y == nullptr: zero measurements (r = A(Z)); the kernel reads a zero block instead
  std::vector<double> zeros(y ? 0 : bounds.back(), 0.0);
  const double* yp = y ? y : zeros.data();
  const double* wp = w.data();
  for_each_slice(L, bounds, req, out, n_threads, [&](Index b, Index e, double* acc) {
    return K.residual_adjoint(data + b * p, e - b, p, wp, yp + b, r + b, acc);
  });
}

template <class T>
void dense_adjoint_slices(const T* data, const DenseLayout& L, const std::vector<Index>& bounds,
                          const double* v, const ThinRequest& req, SliceResults* out,
                          int n_threads) {
  const Index p = L.stored_per_row();
  const auto& K = kernels<T>();
  for_each_slice(L, bounds, req, out, n_threads, [&](Index b, Index e, double* acc) {
    if (acc) K.adjoint(data + b * p, e - b, p, v + b, acc);
    return 0.0;
  });
}

double fold_sumsq(const std::vector<double>& parts) {
  double total = 0.0;
  for (double v : parts) total += v;
  return total;
}

RowMatrixXd fold_products(const std::vector<RowMatrixXd>& parts) {
  RowMatrixXd total = parts[0];
  for (std::size_t s = 1; s < parts.size(); ++s) total += parts[s];
  return total;
}

std::vector<Index> slice_bounds(Index m) {
  const Index n = reduction_slices(m);
  std::vector<Index> bounds(n + 1);
  for (Index s = 0; s < n; ++s) slice_range(m, n, s, &bounds[s], &bounds[s + 1]);
  return bounds;
}

#define WNSENSE_INSTANTIATE(T)                                                                   \
  template void dense_forward<T>(const T*, Index, const DenseLayout&,                            \
                                 const Eigen::Ref<const RowMatrixXd>&, Eigen::Ref<VectorXd>,    \
                                 int);                                                           \
  template void dense_adjoint<T>(const T*, Index, const DenseLayout&,                            \
                                 const Eigen::Ref<const VectorXd>&, Eigen::Ref<RowMatrixXd>,    \
                                 int);                                                           \
  template void dense_residual_slices<T>(const T*, const DenseLayout&,                           \
                                         const std::vector<Index>&,                              \
                                         const Eigen::Ref<const VectorXd>&, const double*,       \
                                         double*, const ThinRequest&, SliceResults*, int);       \
  template void dense_adjoint_slices<T>(const T*, const DenseLayout&, const std::vector<Index>&, \
                                        const double*, const ThinRequest&, SliceResults*, int);
WNSENSE_INSTANTIATE(double)
WNSENSE_INSTANTIATE(float)
#undef WNSENSE_INSTANTIATE

}  // namespace wnsense

// Shared types and small helpers for the native core.
#pragma once
#include <Eigen/Core>
#include <cstdint>
#include <stdexcept>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace wnsense {

using Index = std::int64_t;
template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMatrixXd = RowMatrix<double>;
using VectorXd = Eigen::VectorXd;

// Thread count for one kernel call: n_threads <= 0 means OpenMP's default (OMP_NUM_THREADS,
// threadpoolctl). Never touches a global setting.
inline int resolve_threads(int n_threads) {
#ifdef _OPENMP
  return n_threads > 0 ? n_threads : omp_get_max_threads();
#else
  (void)n_threads;
  return 1;
#endif
}

inline void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

// Team for one pass of `work` units. The default (n_threads <= 0) runs a single thread below
// `min_work`, each kernel's measured size where a team stops paying on a machine shared with
// other work; a count the caller chose is used from kMinParallelWork up (below it a team costs
// more than it saves even on an idle machine).
constexpr Index kMinParallelWork = Index{1} << 15;
inline int team_for_work(int n_threads, Index work, Index min_work) {
  return work < (n_threads > 0 ? kMinParallelWork : min_work) ? 1 : resolve_threads(n_threads);
}

}  // namespace wnsense

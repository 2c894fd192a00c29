// Shared types and small helpers for the native core.
#pragma once
#include <Eigen/Core>
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(_OPENMP) && defined(__unix__)
#include <pthread.h>
#endif

namespace wnsense {

using Index = std::int64_t;
template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMatrixXd = RowMatrix<double>;
using VectorXd = Eigen::VectorXd;

namespace threads {
// Fork safety. libgomp's thread pool does not survive fork(): a child forked after the parent
// ran a parallel region deadlocks in its first parallel region (os.fork, or a multiprocessing
// pool with the fork start method, after any multi-threaded pass). A fork handler marks such a
// child, and every kernel there runs on one thread (the same bits: no result depends on the
// team). A child forked before any parallel pass keeps its threads.
inline std::atomic<bool> team_started{false};  // a team of > 1 threads was requested here
inline std::atomic<bool> forked_after_team{false};
inline void mark_forked_child() {
  if (team_started.load(std::memory_order_relaxed))
    forked_after_team.store(true, std::memory_order_relaxed);
}
#if defined(_OPENMP) && defined(__unix__)
inline const bool fork_handler_registered =
    pthread_atfork(nullptr, nullptr, &mark_forked_child) == 0;
#endif
// The thread count of the solve running on this (Python) thread: what n_threads <= 0 means in
// kernels that are not given the caller's count (0: OpenMP's default). Set by ThreadScope.
inline thread_local int scope_threads = 0;
}  // namespace threads

// Thread count for one kernel call: n_threads <= 0 means the enclosing solve's n_threads (see
// ThreadScope) or else OpenMP's default (OMP_NUM_THREADS, threadpoolctl); one thread in a child
// forked after a parallel pass. Never touches a global setting.
inline int resolve_threads(int n_threads) {
#ifdef _OPENMP
  if (threads::forked_after_team.load(std::memory_order_relaxed)) return 1;
  if (n_threads <= 0) n_threads = threads::scope_threads;
  const int nt = n_threads > 0 ? n_threads : omp_get_max_threads();
  if (nt > 1) threads::team_started.store(true, std::memory_order_relaxed);
  return nt;
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
// The default count's threshold of the streaming passes (dense, observed entries, rank-one):
// about 1.5 ms of one core; the measurement behind it is at team_size in dense_sensing.cpp.
constexpr Index kDefaultMinParallelWork = Index{1} << 22;
inline int team_for_work(int n_threads, Index work, Index min_work) {
  return work < (n_threads > 0 ? kMinParallelWork : min_work) ? 1 : resolve_threads(n_threads);
}

}  // namespace wnsense

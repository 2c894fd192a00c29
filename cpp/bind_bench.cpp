// Measurement helpers for bench/ (in _core.testing): a memory read-bandwidth probe that gives the roofline the
// streaming kernels are compared with. Not used by the solvers.
#include <vector>

#include "bindings.hpp"

namespace wnsense {
namespace {

// Sum of a large array read as 4 interleaved streams per thread (several streams per thread get
// closer to the machine's read bandwidth than one). Up to 3 trailing elements per thread are not
// read: it is a bandwidth probe, not a summation routine.
double stream_read_sum(const double* x, Index n, int n_threads) {
  const int nt = resolve_threads(n_threads);
  std::vector<double> partial(nt, 0.0);
#pragma omp parallel num_threads(nt)
  {
#ifdef _OPENMP
    const int t = omp_get_thread_num(), T = omp_get_num_threads();
#else
    const int t = 0, T = 1;
#endif
    const Index begin = n * t / T, end = n * (t + 1) / T, len = (end - begin) / 4;
    const double* s0 = x + begin;
    const double* s1 = s0 + len;
    const double* s2 = s1 + len;
    const double* s3 = s2 + len;
    double a[4][4] = {};
    Index k = 0;
    for (; k + 4 <= len; k += 4)
      for (int j = 0; j < 4; ++j) {
        a[0][j] += s0[k + j];
        a[1][j] += s1[k + j];
        a[2][j] += s2[k + j];
        a[3][j] += s3[k + j];
      }
    double acc = 0;
    for (auto& row : a)
      for (double v : row) acc += v;
    partial[t] = acc;
  }
  double total = 0;
  for (double v : partial) total += v;
  return total;
}

}  // namespace

void bind_bench(py::module_& m) {
  testing_submodule(m).def(
      "stream_read_sum",
      [](const py::array_t<double, py::array::c_style>& x, int n_threads) {
        const Index n = x.size();
        const double* p = x.data();
        py::gil_scoped_release release;
        return stream_read_sum(p, n, n_threads);
      },
      py::arg("x").noconvert(), py::arg("n_threads") = 0,
      "Read a float64 array once (4 streams per thread); for the bandwidth probe in bench/.");
}

}  // namespace wnsense

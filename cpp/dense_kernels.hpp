// Streaming kernels over a block of rows of a dense sensing operator.
//
// A dense operator is stored as an (m, p) row-major block: row i holds the p stored numbers of
// M_i (p = d1*d2, or d(d+1)/2 in the packed symmetric layout). Every kernel here is a plain
// loop over raw pointers, free of Eigen, because this header is compiled twice (baseline ISA and
// AVX2+FMA) and picked at run time: Eigen templates instantiated under two instruction sets
// would violate the one-definition rule.
#pragma once
#include <cstdint>

namespace wnsense {

template <class T>
struct DenseKernelTable {
  // out[i] = <row_i, w> for i < n_rows (accumulated in double).
  void (*forward)(const T* rows, std::int64_t n_rows, std::int64_t p, const double* w,
                  double* out);
  // acc += sum_i v[i] * row_i.
  void (*adjoint)(const T* rows, std::int64_t n_rows, std::int64_t p, const double* v,
                  double* acc);
  // r[i] = <row_i, w> - y[i]; acc += sum_i r[i] * row_i when acc != nullptr; returns sum r[i]^2.
  // One pass: the rows of a 4-row block are still in cache when the adjoint reads them again.
  double (*residual_adjoint)(const T* rows, std::int64_t n_rows, std::int64_t p, const double* w,
                             const double* y, double* r, double* acc);
};

const DenseKernelTable<double>& dense_kernels_f64();
const DenseKernelTable<float>& dense_kernels_f32();
// "avx2" or "generic": which compiled variant the run-time dispatch picked.
const char* dense_kernel_isa();

namespace kernels_generic {
const DenseKernelTable<double>& table_f64();
const DenseKernelTable<float>& table_f32();
}  // namespace kernels_generic
namespace kernels_avx2 {
const DenseKernelTable<double>& table_f64();
const DenseKernelTable<float>& table_f32();
}  // namespace kernels_avx2

}  // namespace wnsense

// Baseline-ISA build of the streaming kernels, plus the run-time dispatch.
#define WNSENSE_KERNEL_NS kernels_generic
#include "dense_kernels_impl.hpp"

#include <cstdlib>
#include <cstring>

namespace wnsense {
namespace {
bool cpu_has_avx2_fma() {
#if WNSENSE_HAVE_AVX2_TU && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}
// WNSENSE_KERNEL_ISA=generic forces the baseline kernels (read once, at load time): results then
// match a machine without AVX2, e.g. to test that a cluster with mixed ISAs is detected.
bool use_avx2() {
  const char* forced = std::getenv("WNSENSE_KERNEL_ISA");
  if (forced && std::strcmp(forced, "generic") == 0) return false;
  return cpu_has_avx2_fma();
}
const bool kUseAvx2 = use_avx2();
}  // namespace

const DenseKernelTable<double>& dense_kernels_f64() {
#if WNSENSE_HAVE_AVX2_TU
  if (kUseAvx2) return kernels_avx2::table_f64();
#endif
  return kernels_generic::table_f64();
}
const DenseKernelTable<float>& dense_kernels_f32() {
#if WNSENSE_HAVE_AVX2_TU
  if (kUseAvx2) return kernels_avx2::table_f32();
#endif
  return kernels_generic::table_f32();
}
const char* dense_kernel_isa() { return kUseAvx2 ? "avx2" : "generic"; }
}  // namespace wnsense

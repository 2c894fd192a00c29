// AVX2+FMA build of the streaming kernels (compiled with -mavx2 -mfma; used only when the CPU
// reports both, see dense_kernels_generic.cpp).
#define WNSENSE_KERNEL_NS kernels_avx2
#include "dense_kernels_impl.hpp"

// Implementation of the streaming kernels; included once per instruction set with
// WNSENSE_KERNEL_NS naming the namespace (see dense_kernels.hpp).
#pragma once
#include <cstdint>
#include <initializer_list>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "dense_kernels.hpp"

#ifndef WNSENSE_KERNEL_NS
#error "define WNSENSE_KERNEL_NS before including dense_kernels_impl.hpp"
#endif

namespace wnsense {
namespace WNSENSE_KERNEL_NS {
namespace {

using std::int64_t;

// Lanes of independent partial sums: lets the compiler keep the dot products in vector registers
// without -ffast-math, and fixes the summation order (the result does not depend on threads).
constexpr int kLanes = 8;

template <class T>
inline double lane_sum(const double (&s)[kLanes]) {
  double a = (s[0] + s[4]) + (s[1] + s[5]);
  double b = (s[2] + s[6]) + (s[3] + s[7]);
  return a + b;
}

#if defined(__AVX2__) && defined(__FMA__)
// ---- AVX2+FMA: explicit vectors (GCC does not vectorize the lane code reliably) ----------------
inline __m256d load4(const double* p) { return _mm256_loadu_pd(p); }
inline __m256d load4(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
inline double hsum(__m256d a, __m256d b) {
  const __m256d s = _mm256_add_pd(a, b);
  const __m128d lo = _mm256_castpd256_pd128(s), hi = _mm256_extractf128_pd(s, 1);
  const __m128d t = _mm_add_pd(lo, hi);
  return _mm_cvtsd_f64(_mm_add_sd(t, _mm_unpackhi_pd(t, t)));
}

// Software prefetch kPrefetchBytes ahead in each of the four row streams, once per cache line of
// element k. The hardware prefetcher alone leaves one core short of the machine's read bandwidth
// on four interleaved streams (float32 forward, d = 100, one thread: 23 GB/s without, 28 GB/s
// with a 2 KB distance; probe 37 GB/s). The address is formed as an integer: prefetching past the
// end of the data is harmless (a prefetch never faults) but pointer arithmetic past it would not
// be defined.
constexpr std::uintptr_t kPrefetchBytes = 2048;
template <class T>
inline void prefetch_rows(const T* a0, const T* a1, const T* a2, const T* a3, int64_t k) {
  constexpr int64_t kLine = 64 / sizeof(T);  // elements per cache line
  if (k % kLine != 0) return;
  for (const T* a : {a0, a1, a2, a3})
    _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<std::uintptr_t>(a + k) +
                                               kPrefetchBytes),
                 _MM_HINT_T0);
}

// Four dot products <a_j, w> at once: w is loaded once per four rows.
template <class T>
inline void dot4(const T* __restrict a0, const T* __restrict a1, const T* __restrict a2,
                 const T* __restrict a3, const double* __restrict w, int64_t p, double* out) {
  __m256d s00 = _mm256_setzero_pd(), s01 = s00, s10 = s00, s11 = s00, s20 = s00, s21 = s00,
          s30 = s00, s31 = s00;
  int64_t k = 0;
  for (; k + 8 <= p; k += 8) {
    prefetch_rows(a0, a1, a2, a3, k);
    const __m256d w0 = _mm256_loadu_pd(w + k), w1 = _mm256_loadu_pd(w + k + 4);
    s00 = _mm256_fmadd_pd(load4(a0 + k), w0, s00);
    s01 = _mm256_fmadd_pd(load4(a0 + k + 4), w1, s01);
    s10 = _mm256_fmadd_pd(load4(a1 + k), w0, s10);
    s11 = _mm256_fmadd_pd(load4(a1 + k + 4), w1, s11);
    s20 = _mm256_fmadd_pd(load4(a2 + k), w0, s20);
    s21 = _mm256_fmadd_pd(load4(a2 + k + 4), w1, s21);
    s30 = _mm256_fmadd_pd(load4(a3 + k), w0, s30);
    s31 = _mm256_fmadd_pd(load4(a3 + k + 4), w1, s31);
  }
  double t0 = 0, t1 = 0, t2 = 0, t3 = 0;
  for (; k < p; ++k) {
    t0 += static_cast<double>(a0[k]) * w[k];
    t1 += static_cast<double>(a1[k]) * w[k];
    t2 += static_cast<double>(a2[k]) * w[k];
    t3 += static_cast<double>(a3[k]) * w[k];
  }
  out[0] = hsum(s00, s01) + t0;
  out[1] = hsum(s10, s11) + t1;
  out[2] = hsum(s20, s21) + t2;
  out[3] = hsum(s30, s31) + t3;
}

template <class T>
inline double dot1(const T* __restrict a, const double* __restrict w, int64_t p) {
  __m256d s0 = _mm256_setzero_pd(), s1 = s0;
  int64_t k = 0;
  for (; k + 8 <= p; k += 8) {
    s0 = _mm256_fmadd_pd(load4(a + k), _mm256_loadu_pd(w + k), s0);
    s1 = _mm256_fmadd_pd(load4(a + k + 4), _mm256_loadu_pd(w + k + 4), s1);
  }
  double t = 0;
  for (; k < p; ++k) t += static_cast<double>(a[k]) * w[k];
  return hsum(s0, s1) + t;
}

// acc[k..k+3] += c0 a0 + c1 a1 + c2 a2 + c3 a3 (one load and one store of acc per four rows).
template <class T>
inline void axpy4_step(const T* a0, const T* a1, const T* a2, const T* a3, __m256d c0, __m256d c1,
                       __m256d c2, __m256d c3, double* acc, int64_t k) {
  __m256d x = _mm256_mul_pd(c0, load4(a0 + k));
  __m256d y = _mm256_mul_pd(c1, load4(a1 + k));
  x = _mm256_fmadd_pd(c2, load4(a2 + k), x);
  y = _mm256_fmadd_pd(c3, load4(a3 + k), y);
  _mm256_storeu_pd(acc + k, _mm256_add_pd(_mm256_loadu_pd(acc + k), _mm256_add_pd(x, y)));
}

template <class T>
inline void axpy4_tail(const T* a0, const T* a1, const T* a2, const T* a3, const double* c,
                       double* acc, int64_t k) {
  acc[k] += (c[0] * static_cast<double>(a0[k]) + c[1] * static_cast<double>(a1[k])) +
            (c[2] * static_cast<double>(a2[k]) + c[3] * static_cast<double>(a3[k]));
}

// kFromMemory: the rows stream from memory (the adjoint alone), so prefetch them; in the fused
// pass they were just read by the dot products and sit in cache.
template <bool kFromMemory = false, class T>
inline void axpy4(const T* __restrict a0, const T* __restrict a1, const T* __restrict a2,
                  const T* __restrict a3, const double* c, double* __restrict acc, int64_t p) {
  const __m256d c0 = _mm256_set1_pd(c[0]), c1 = _mm256_set1_pd(c[1]), c2 = _mm256_set1_pd(c[2]),
                c3 = _mm256_set1_pd(c[3]);
  int64_t k = 0;
  for (; k + 4 <= p; k += 4) {
    if (kFromMemory) prefetch_rows(a0, a1, a2, a3, k);
    axpy4_step(a0, a1, a2, a3, c0, c1, c2, c3, acc, k);
  }
  for (; k < p; ++k) axpy4_tail(a0, a1, a2, a3, c, acc, k);
}

template <class T>
inline void axpy1(const T* __restrict a, double c, double* __restrict acc, int64_t p) {
  const __m256d cc = _mm256_set1_pd(c);
  int64_t k = 0;
  for (; k + 4 <= p; k += 4)
    _mm256_storeu_pd(acc + k, _mm256_fmadd_pd(cc, load4(a + k), _mm256_loadu_pd(acc + k)));
  for (; k < p; ++k) acc[k] += c * static_cast<double>(a[k]);
}

#else
// ---- portable: lanes of independent partial sums the compiler can keep in vector registers --
// Four dot products <a_j, w> at once: w is loaded once per four rows.
template <class T>
inline void dot4(const T* __restrict a0, const T* __restrict a1, const T* __restrict a2,
                 const T* __restrict a3, const double* __restrict w, int64_t p, double* out) {
  double s0[kLanes] = {}, s1[kLanes] = {}, s2[kLanes] = {}, s3[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= p; k += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      const double wk = w[k + j];
      s0[j] += static_cast<double>(a0[k + j]) * wk;
      s1[j] += static_cast<double>(a1[k + j]) * wk;
      s2[j] += static_cast<double>(a2[k + j]) * wk;
      s3[j] += static_cast<double>(a3[k + j]) * wk;
    }
  }
  for (int j = 0; k < p; ++k, ++j) {
    const double wk = w[k];
    s0[j] += static_cast<double>(a0[k]) * wk;
    s1[j] += static_cast<double>(a1[k]) * wk;
    s2[j] += static_cast<double>(a2[k]) * wk;
    s3[j] += static_cast<double>(a3[k]) * wk;
  }
  out[0] = lane_sum<T>(s0);
  out[1] = lane_sum<T>(s1);
  out[2] = lane_sum<T>(s2);
  out[3] = lane_sum<T>(s3);
}

template <class T>
inline double dot1(const T* __restrict a, const double* __restrict w, int64_t p) {
  double s[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= p; k += kLanes)
    for (int j = 0; j < kLanes; ++j) s[j] += static_cast<double>(a[k + j]) * w[k + j];
  for (int j = 0; k < p; ++k, ++j) s[j] += static_cast<double>(a[k]) * w[k];
  return lane_sum<T>(s);
}

// acc += c0 a0 + c1 a1 + c2 a2 + c3 a3: one load and one store of acc per four rows.
template <bool kFromMemory = false, class T>
inline void axpy4(const T* __restrict a0, const T* __restrict a1, const T* __restrict a2,
                  const T* __restrict a3, const double* c, double* __restrict acc, int64_t p) {
  const double c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
  for (int64_t k = 0; k < p; ++k)
    acc[k] += (c0 * static_cast<double>(a0[k]) + c1 * static_cast<double>(a1[k])) +
              (c2 * static_cast<double>(a2[k]) + c3 * static_cast<double>(a3[k]));
}

template <class T>
inline void axpy1(const T* __restrict a, double c, double* __restrict acc, int64_t p) {
  for (int64_t k = 0; k < p; ++k) acc[k] += c * static_cast<double>(a[k]);
}

#endif

template <class T>
void forward(const T* rows, int64_t n, int64_t p, const double* w, double* out) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const T* a = rows + i * p;
    dot4(a, a + p, a + 2 * p, a + 3 * p, w, p, out + i);
  }
  for (; i < n; ++i) out[i] = dot1(rows + i * p, w, p);
}

template <class T>
void adjoint(const T* rows, int64_t n, int64_t p, const double* v, double* acc) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const T* a = rows + i * p;
    axpy4<true>(a, a + p, a + 2 * p, a + 3 * p, v + i, acc, p);
  }
  for (; i < n; ++i) axpy1(rows + i * p, v[i], acc, p);
}

template <class T>
double residual_adjoint(const T* rows, int64_t n, int64_t p, const double* w, const double* y,
                        double* r, double* acc) {
  double sumsq = 0.0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const T* a = rows + i * p;
    double z[4];
    dot4(a, a + p, a + 2 * p, a + 3 * p, w, p, z);
    for (int j = 0; j < 4; ++j) {
      z[j] -= y[i + j];
      r[i + j] = z[j];
      sumsq += z[j] * z[j];
    }
    // The adjoint update right after the dot products, while the four rows are in cache.
    // Measured and rejected (d = 100, m = 20000, one thread): a software-pipelined variant
    // overlapping the next block's dots (fused/forward 0.66 vs 0.78 in float64), and, for
    // float32, keeping the converted float64 rows for the update instead of converting twice
    // (fused 12.6 vs 18.7 GB/s: the stores and L2 traffic cost more than the conversion), and
    // eight-row blocks with one load/store of acc per eight rows (bit-identical; fused float64
    // 27.4 vs 28.7 GB/s, float32 23.2 vs 23.9: acc traffic is not what limits the pass). In a
    // stand-alone copy of this loop, neither AVX-512 (float64 28.2 vs 28.3 GB/s, float32 24.0 vs
    // 23.4), nor prefetching the rows into L1 ahead of the update, nor prefetching the next
    // block's rows during the update (to keep memory busy while the update reads cache) gained
    // more than 4%: one core re-reads each block from L2 at about its own speed.
    if (acc) axpy4(a, a + p, a + 2 * p, a + 3 * p, z, acc, p);
  }
  for (; i < n; ++i) {
    const double ri = dot1(rows + i * p, w, p) - y[i];
    r[i] = ri;
    sumsq += ri * ri;
    if (acc) axpy1(rows + i * p, ri, acc, p);
  }
  return sumsq;
}

}  // namespace

const DenseKernelTable<double>& table_f64() {
  static const DenseKernelTable<double> t{&forward<double>, &adjoint<double>,
                                          &residual_adjoint<double>};
  return t;
}
const DenseKernelTable<float>& table_f32() {
  static const DenseKernelTable<float> t{&forward<float>, &adjoint<float>,
                                         &residual_adjoint<float>};
  return t;
}

}  // namespace WNSENSE_KERNEL_NS
}  // namespace wnsense

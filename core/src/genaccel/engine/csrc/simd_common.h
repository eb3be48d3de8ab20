// What the AVX2 kernels (through simd.h) and the AVX-512 kernels (cpu_gemv_avx512.cpp) share: prefetch
// distances and horizontal sums.  The AVX-512 int8 and int4 kernels give the AVX2 kernels' results bitwise only
// with the same order of additions, so there is one definition of each.  In an unnamed namespace: each file
// compiles its own copy for its own target, so a copy compiled for AVX-512 is never the one a machine without
// it runs (inline functions of external linkage could be merged at link time).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace genaccel_simd {
namespace {

constexpr int64_t kPrefetch = 4096;  // at least this many bytes ahead of the loads of a stream

// How far ahead to prefetch rows read `rows` at a time, `row_bytes` each: the same place in
// the next rows (the loads that follow), at least kPrefetch bytes on.
inline int64_t ahead(int64_t rows, int64_t row_bytes) {
  const int64_t next = rows * row_bytes;
  return next * ((kPrefetch + next - 1) / next);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// The sums of four vectors' eight 32-bit lanes, one lane each.
inline __m128i hsum4(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i pairs = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
  return _mm_add_epi32(_mm256_castsi256_si128(pairs), _mm256_extracti128_si256(pairs, 1));
}

}  // namespace
}  // namespace genaccel_simd

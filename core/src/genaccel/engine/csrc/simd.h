// AVX2 helpers shared by genaccel's CPU kernels (cpu_gemv.cpp, cpu_attention.cpp).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace genaccel_simd {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float bf16_to_float(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Stored formats: eight consecutive values as floats, and one as a float.
struct F32 {
  using T = float;
  static __m256 load8(const T* p) { return _mm256_loadu_ps(p); }
  static float load1(const T* p) { return *p; }
};
struct BF16 {
  using T = uint16_t;
  static __m256 load8(const T* p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  }
  static float load1(const T* p) { return bf16_to_float(*p); }
};

constexpr int64_t kPrefetch = 4096;  // at least this many bytes ahead of the loads of a stream

// How far ahead to prefetch rows read `rows` at a time, `row_bytes` each: the same place in
// the next rows (the loads that follow), at least kPrefetch bytes on.
inline int64_t ahead(int64_t rows, int64_t row_bytes) {
  const int64_t next = rows * row_bytes;
  return next * ((kPrefetch + next - 1) / next);
}

}  // namespace genaccel_simd

// AVX2 helpers shared by genaccel's CPU kernels (cpu_gemv.cpp, cpu_attention.cpp), with simd_common.h's.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#include "simd_common.h"

namespace genaccel_simd {

// Scratch arrays on cache-line boundaries: std::vector's 16-byte alignment can split every other 32-byte
// load of them across two cache lines.  Measured on 2 Zen 3 cores, a 768 x 768 bf16 product (weights in
// cache) took 43 us reading its inputs from a std::vector copy and 34 us reading the input tensor's own
// (64-byte aligned) memory; over a preset's decode matrices from memory the alignment made no difference.
template <class T>
struct LineAligned {
  using value_type = T;
  LineAligned() = default;
  template <class U>
  LineAligned(const LineAligned<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <class U>
  bool operator==(const LineAligned<U>&) const { return true; }
  template <class U>
  bool operator!=(const LineAligned<U>&) const { return false; }
};
template <class T>
using lines = std::vector<T, LineAligned<T>>;

inline float bf16_to_float(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Stored formats: kStep consecutive values as kStep / 8 float vectors (load) whose lane i holds value
// feature(i) of the kStep (i within a multiple of kStep: the same offset), and one value as a float (load1).
struct F32 {
  using T = float;
  static constexpr int kStep = 8;
  static void load(const T* p, __m256* v) { v[0] = _mm256_loadu_ps(p); }
  static float load1(const T* p) { return *p; }
  static int64_t feature(int64_t i) { return i; }
};
// bfloat16, sixteen at a time: interleaving each 128-bit lane's words with zeros puts them in the
// high halves of float32 lanes, which is the conversion, one instruction for eight values (where
// widening takes two: a widening and a shift).  The floats come out as values 0-3 and 8-11, then 4-7 and 12-15.
struct BF16Unpack {
  using T = uint16_t;
  static constexpr int kStep = 16;
  static void load(const T* p, __m256* v) {
    const __m256i words = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), zero = _mm256_setzero_si256();
    v[0] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, words));
    v[1] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, words));
  }
  static float load1(const T* p) { return bf16_to_float(*p); }
  // swaps values 4-7 and 8-11 of every 16 (its own inverse)
  static int64_t feature(int64_t i) { return (i & 12) == 4 ? i + 4 : ((i & 12) == 8 ? i - 4 : i); }
};

}  // namespace genaccel_simd

// AVX-512 forms of cpu_gemv.cpp's few-row products, for x86 CPUs that have AVX-512 BF16 and VNNI (Cooper Lake,
// Sapphire Rapids and later Xeons, Zen 4 and later):
// - bf16 weights times bf16 inputs with the bf16 dot product (vdpbf16ps: 32 products a call, summed in float32
//   pairwise into 16 lanes).  Each product of two bf16 values is exact in float32, so this is the AVX2 kernel's
//   arithmetic in another order of the float32 sums.
// - int8 weights (pack_int8_rows) times inputs quantized per 32 features, with the integer dot product
//   (vpdpbusd: unsigned by signed bytes, four products summed into each 32-bit lane).  The weights are made
//   unsigned by adding 128 (w ^ 0x80) and each lane starts from -128 times its four inputs' sum, so each lane
//   holds the same exact integer as the AVX2 kernel's maddubs and madd over the same four features, and the
//   float sums that follow are the AVX2 kernel's: the results are bitwise equal.
// - group-wise int4 weights (pack_uint4) times inputs quantized per group, with vpdpbusd on the unsigned nibbles
//   and the signed inputs: each group's integer sums go straight into 32-bit lanes, where the AVX2 kernel sums
//   in 16 bits and widens.  Each output row's group sum is the same exact integer, and the float steps that
//   follow are the AVX2 kernel's: bitwise equal results.
//
// The functions here are compiled for AVX-512 by GCC's target pragma below (with other compilers the file is
// empty and the AVX2 kernels run) and called only where avx512_kernels() (cpu_gemv.cpp) says the CPU has them.
// This file includes no torch headers and no standard-library templates: an inline function compiled here for
// AVX-512 and also by the files compiled for AVX2 could be merged with theirs at link time and run where
// AVX-512 is missing.  Its helpers, and simd_common.h's, have internal linkage.
#include "cpu_gemv_avx512.h"

#if GENACCEL_AVX512
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx512vnni")

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "simd_common.h"

namespace {

using namespace genaccel_simd;

inline __m512bh bf16_load(const uint16_t* p) { return (__m512bh)_mm512_loadu_si512(p); }
inline __m512bh bf16_load(const uint16_t* p, __mmask32 m) { return (__m512bh)_mm512_maskz_loadu_epi16(m, p); }

// y[r][o + b] for b < B and r < R: B weight rows (one cache line each per step) against the R rows of x.
template <int R, int B>
void bf16_block(const uint16_t* x, const uint16_t* w, float* y, int64_t k, int64_t out, int64_t o, int64_t dist) {
  __m512 acc[B][R];
  for (int b = 0; b < B; ++b)
    for (int r = 0; r < R; ++r) acc[b][r] = _mm512_setzero_ps();
  const uint16_t* row[B];
  for (int b = 0; b < B; ++b) row[b] = w + (o + b) * k;
  const int64_t kfull = k & ~int64_t{31};
  int64_t i = 0;
  for (; i < kfull; i += 32) {
    for (int b = 0; b < B; ++b) _mm_prefetch(reinterpret_cast<const char*>(row[b] + i) + dist, _MM_HINT_T0);
    __m512bh xv[R];
    for (int r = 0; r < R; ++r) xv[r] = bf16_load(x + r * k + i);
    for (int b = 0; b < B; ++b) {
      const __m512bh wv = bf16_load(row[b] + i);
      for (int r = 0; r < R; ++r) acc[b][r] = _mm512_dpbf16_ps(acc[b][r], wv, xv[r]);
    }
  }
  if (i < k) {  // the last k % 32 features, the rest of the lanes zero
    const __mmask32 m = static_cast<__mmask32>((uint64_t{1} << (k - i)) - 1);
    __m512bh xv[R];
    for (int r = 0; r < R; ++r) xv[r] = bf16_load(x + r * k + i, m);
    for (int b = 0; b < B; ++b) {
      const __m512bh wv = bf16_load(row[b] + i, m);
      for (int r = 0; r < R; ++r) acc[b][r] = _mm512_dpbf16_ps(acc[b][r], wv, xv[r]);
    }
  }
  for (int b = 0; b < B; ++b)
    for (int r = 0; r < R; ++r) y[r * out + o + b] = _mm512_reduce_add_ps(acc[b][r]);
}

// Output rows [o0, o1) four at a time (four streams of weights), the rest one at a time.
template <int R>
void bf16_rows_of(const uint16_t* x, const uint16_t* w, float* y, int64_t k, int64_t out, int64_t o0, int64_t o1) {
  constexpr int B = 4;
  const int64_t dist = ahead(B, 2 * k);
  int64_t o = o0;
  for (; o + B <= o1; o += B) bf16_block<R, B>(x, w, y, k, out, o, dist);
  for (; o < o1; ++o) bf16_block<R, 1>(x, w, y, k, out, o, dist);
}

// Groups of four output rows from o0 / 4, each one stream of 128-byte chunks (a block of 32 features of each
// row in turn); two rows of a chunk per 512-bit vector, the input block in both halves.
template <int R>
void int8_rows_of(const int8_t* xq, const float* xd, const int8_t* packed, float* y, int64_t k, int64_t out,
                  int64_t o0, int64_t o1) {
  const int64_t blocks = k / 32, dist = ahead(1, 4 * k);
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m256i ones = _mm256_set1_epi8(1);
  for (int64_t g = o0 / 4; g * 4 < o1; ++g) {
    const int8_t* p = packed + g * 4 * k;
    __m512 acc[2][R];  // [h][r]: lanes 0-7 row 4g + 2h, lanes 8-15 row 4g + 2h + 1
    for (int h = 0; h < 2; ++h)
      for (int r = 0; r < R; ++r) acc[h][r] = _mm512_setzero_ps();
    for (int64_t c = 0; c < blocks; ++c, p += 128) {
      _mm_prefetch(reinterpret_cast<const char*>(p + dist), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(p + dist + 64), _MM_HINT_T0);
      __m512i xv[R], start[R];
      __m512 dv[R];
      for (int r = 0; r < R; ++r) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + r * k + c * 32));
        const __m256i sums = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, x);  // each lane's four inputs
        xv[r] = _mm512_broadcast_i64x4(x);
        start[r] = _mm512_broadcast_i64x4(_mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(sums, 7)));
        dv[r] = _mm512_set1_ps(xd[r * blocks + c]);
      }
      for (int h = 0; h < 2; ++h) {
        const __m512i w = _mm512_xor_si512(_mm512_loadu_si512(p + h * 64), flip);
        for (int r = 0; r < R; ++r)
          acc[h][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(start[r], w, xv[r])), dv[r], acc[h][r]);
      }
    }
    for (int h = 0; h < 2; ++h)
      for (int half = 0; half < 2; ++half) {
        const int64_t o = g * 4 + 2 * h + half;
        if (o < o0 || o >= o1 || o >= out) continue;
        for (int r = 0; r < R; ++r) {
          const __m256 lanes = half ? _mm512_extractf32x8_ps(acc[h][r], 1) : _mm512_castps512_ps256(acc[h][r]);
          y[r * out + o] = hsum(lanes);
        }
      }
  }
}

// Groups of four output rows from o0 / 4 (the packed rows are padded to a multiple of 4), each chunk of 64
// features one stream of 128 bytes; two rows' 32 bytes per 512-bit vector, each block of 32 input features in
// both halves.  Rows of a group outside [o0, o1) or past `out` are computed (as zeros past `out`) and not written.
template <int R>
void int4_rows_of(const int8_t* xq, const float* xd, const float* xsum, const int32_t* xqsum, const uint8_t* packed,
                  const uint16_t* scale_zero, float* y, int64_t k, int64_t out, int64_t group, int64_t o0,
                  int64_t o1) {
  const int64_t groups = k / group, per_group = group / 32;
  const __m512i mask = _mm512_set1_epi8(0x0F);
  const __m128i high = _mm_set1_epi32(static_cast<int32_t>(0xFFFF0000u));
  for (int64_t o = o0 & ~int64_t{3}; o < o1; o += 4) {
    const uint8_t* p = packed + o * k / 2;  // 4 rows of k / 2 bytes
    __m512i dot[2][R];  // [h][r]: lanes 0-7 row o + 2h, lanes 8-15 row o + 2h + 1
    __m128 tot[R];  // lane b: output row o + b
    for (int r = 0; r < R; ++r) {
      tot[r] = _mm_setzero_ps();
      dot[0][r] = dot[1][r] = _mm512_setzero_si512();
    }
    int64_t left = per_group, g = 0;  // blocks left in group g
    auto block = [&](const __m512i (&q)[2], int64_t blk) {  // the nibbles of one block of 32 features
      for (int r = 0; r < R; ++r) {
        const __m512i xv = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + r * k + blk * 32)));
        for (int h = 0; h < 2; ++h) dot[h][r] = _mm512_dpbusd_epi32(dot[h][r], q[h], xv);
      }
      if (--left) return;
      int32_t word[4] = {0, 0, 0, 0};  // each row's bf16 scale (low half) and zero point (high half)
      for (int b = 0; b < 4 && o + b < out; ++b) std::memcpy(&word[b], scale_zero + ((o + b) * groups + g) * 2, 4);
      const __m128i sz = _mm_setr_epi32(word[0], word[1], word[2], word[3]);
      const __m128 s = _mm_castsi128_ps(_mm_slli_epi32(sz, 16)), z = _mm_castsi128_ps(_mm_and_si128(sz, high));
      for (int r = 0; r < R; ++r) {
        const __m128i sums = hsum4(_mm512_castsi512_si256(dot[0][r]), _mm512_extracti64x4_epi64(dot[0][r], 1),
                                   _mm512_castsi512_si256(dot[1][r]), _mm512_extracti64x4_epi64(dot[1][r], 1));
        const int64_t i = r * groups + g;
        const __m128i exact = _mm_sub_epi32(sums, _mm_set1_epi32(8 * xqsum[i]));
        tot[r] = _mm_fmadd_ps(_mm_cvtepi32_ps(exact), _mm_mul_ps(s, _mm_set1_ps(xd[i])), tot[r]);
        tot[r] = _mm_fmadd_ps(z, _mm_set1_ps(xsum[i]), tot[r]);
        dot[0][r] = dot[1][r] = _mm512_setzero_si512();
      }
      left = per_group, ++g;
    };
    for (int64_t c = 0; c < k / 64; ++c, p += 128) {
      _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetch, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetch + 64, _MM_HINT_T0);
      __m512i bytes[2], q[2];
      for (int h = 0; h < 2; ++h) {
        bytes[h] = _mm512_loadu_si512(p + h * 64);
        q[h] = _mm512_and_si512(bytes[h], mask);  // features 0-31 of the chunk
      }
      block(q, 2 * c);
      for (int h = 0; h < 2; ++h) q[h] = _mm512_and_si512(_mm512_srli_epi16(bytes[h], 4), mask);  // 32-63
      block(q, 2 * c + 1);
    }
    for (int r = 0; r < R; ++r) {
      float lanes[4];
      _mm_storeu_ps(lanes, tot[r]);
      for (int b = 0; b < 4; ++b)
        if (o + b >= o0 && o + b < o1) y[r * out + o + b] = lanes[b];
    }
  }
}

}  // namespace

namespace genaccel_avx512 {

void bf16_rows(int rows, const uint16_t* x, const uint16_t* w, float* y, int64_t k, int64_t out, int64_t o0,
               int64_t o1) {
  switch (rows) {
    case 1: return bf16_rows_of<1>(x, w, y, k, out, o0, o1);
    case 2: return bf16_rows_of<2>(x, w, y, k, out, o0, o1);
    case 3: return bf16_rows_of<3>(x, w, y, k, out, o0, o1);
    default: return bf16_rows_of<4>(x, w, y, k, out, o0, o1);
  }
}

void int8_rows(int rows, const int8_t* xq, const float* xd, const int8_t* packed, float* y, int64_t k, int64_t out,
               int64_t o0, int64_t o1) {
  switch (rows) {
    case 1: return int8_rows_of<1>(xq, xd, packed, y, k, out, o0, o1);
    case 2: return int8_rows_of<2>(xq, xd, packed, y, k, out, o0, o1);
    case 3: return int8_rows_of<3>(xq, xd, packed, y, k, out, o0, o1);
    default: return int8_rows_of<4>(xq, xd, packed, y, k, out, o0, o1);
  }
}

void int4_rows(int rows, const int8_t* xq, const float* xd, const float* xsum, const int32_t* xqsum, const uint8_t* packed,
               const uint16_t* scale_zero, float* y, int64_t k, int64_t out, int64_t group, int64_t o0, int64_t o1) {
  switch (rows) {
    case 1: return int4_rows_of<1>(xq, xd, xsum, xqsum, packed, scale_zero, y, k, out, group, o0, o1);
    case 2: return int4_rows_of<2>(xq, xd, xsum, xqsum, packed, scale_zero, y, k, out, group, o0, o1);
    case 3: return int4_rows_of<3>(xq, xd, xsum, xqsum, packed, scale_zero, y, k, out, group, o0, o1);
    default: return int4_rows_of<4>(xq, xd, xsum, xqsum, packed, scale_zero, y, k, out, group, o0, o1);
  }
}

}  // namespace genaccel_avx512

#else  // never called (avx512_kernels() is false), defined for the linker

namespace genaccel_avx512 {
void bf16_rows(int, const uint16_t*, const uint16_t*, float*, int64_t, int64_t, int64_t, int64_t) {}
void int8_rows(int, const int8_t*, const float*, const int8_t*, float*, int64_t, int64_t, int64_t, int64_t) {}
void int4_rows(int, const int8_t*, const float*, const float*, const int32_t*, const uint8_t*, const uint16_t*, float*,
               int64_t, int64_t, int64_t, int64_t, int64_t) {}
}  // namespace genaccel_avx512

#endif  // GENACCEL_AVX512

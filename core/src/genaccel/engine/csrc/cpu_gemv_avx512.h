// The AVX-512 kernels of cpu_gemv_avx512.cpp, called by cpu_gemv.cpp where the CPU has the instructions.
#pragma once

#include <cstdint>

// GCC compiles them (its target pragma); with other compilers the AVX2 kernels run everywhere.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define GENACCEL_AVX512 1
#else
#define GENACCEL_AVX512 0
#endif

namespace genaccel_avx512 {

// y[r][o] = sum_i x[r][i] * w[o][i] (float32, unscaled) for r < rows (at most 4) and o in [o0, o1): x (rows, k)
// and w (out, k) in bfloat16.  Needs AVX-512 BF16 (both need what avx512_kernels() checks).
void bf16_rows(int rows, const uint16_t* x, const uint16_t* w, float* y, int64_t k, int64_t out, int64_t o0,
               int64_t o1);

// cpu_gemv.cpp's int8_rows (the same results, bitwise): the rows of x quantized per 32 features (xq, xd) times
// the int8 weights packed by pack_int8_rows, unscaled, for r < rows (at most 4) and o in [o0, o1).  Needs AVX-512 VNNI.
void int8_rows(int rows, const int8_t* xq, const float* xd, const int8_t* packed, float* y, int64_t k, int64_t out,
               int64_t o0, int64_t o1);

// cpu_gemv.cpp's int4_rows (the same results, bitwise): the rows of x quantized per group (quantize_rows: xq, xd,
// xsum, xqsum) times the group-wise int4 weights of pack_uint4 and scale_zero, for r < rows (at most 4) and o in
// [o0, o1).  Needs AVX-512 VNNI.
void int4_rows(int rows, const int8_t* xq, const float* xd, const float* xsum, const int32_t* xqsum, const uint8_t* packed,
               const uint16_t* scale_zero, float* y, int64_t k, int64_t out, int64_t group, int64_t o0, int64_t o1);

}  // namespace genaccel_avx512

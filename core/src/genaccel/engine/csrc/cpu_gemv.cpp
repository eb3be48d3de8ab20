// Few-row products with a weight read once from memory, for decode steps on x86 CPUs with AVX2
// and FMA: y = x @ W.T for x of up to a few rows and W in float32, bfloat16, int8 (one scale per
// output row) or group-wise uint4 (a bf16 scale and zero point per group of input features).
//
// Each weight row is loaded once for every row of x (up to four rows share a load; more rows run
// in chunks of four), converted to float32 in registers and multiplied with fused multiply-adds
// into float32 accumulators.  Independent chains hide the FMA latency: several output rows
// interleaved, or several chains along one row (the weight formats' kChains).  Output rows are split
// between threads (ATen's parallel_for).
//
// int4 layout (pack_uint4): for each output row, each chunk of 64 input features is 32 bytes; byte
// j holds feature j in its low nibble and feature 32 + j in its high nibble.  The rows are padded to a
// multiple of 4 and each 4 are interleaved chunk by chunk (chunk c of rows 4i .. 4i + 3 are 128
// consecutive bytes: int4_chunk), so the four rows a decode step reads together are one stream.  A
// weight is (q - 8) * scale + zero with the scale and zero point of its group (scale_zero: (out, groups, 2)).
// The int4 product quantizes each row of x to int8 per group of the weights (a float scale per
// group; llama.cpp's q4_0 x q8_0 dot does the same per 32 features) and sums (q - 8) * xq exactly
// in integers: a fifth of the instructions of converting every weight to float.  The zero points
// meet the float sums of x.
//
// Where the CPU has AVX-512 BF16 and VNNI, the bf16 (with bf16 inputs), int8 and int4 products run
// cpu_gemv_avx512.cpp's kernels instead (avx512_kernels()).
//
// int7_from_int4 gives the int4 weights as int8 within +-64 with a scale per output row: the weight side of
// oneDNN's u8 x s8 GEMM for many-row products (genaccel/optimizations/int4cpu.py).

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "cpu_gemv_avx512.h"
#include "simd.h"

namespace {

using namespace genaccel_simd;

constexpr int kRows = 4;  // rows of x sharing one weight load

// Whether the CPU has AVX-512 with BF16 and VNNI (cpu_gemv_avx512.cpp's kernels), unless GENACCEL_NATIVE_ISA=avx2
// keeps the AVX2 kernels.
bool avx512_kernels() {
  static const bool has = [] {
    const char* isa = std::getenv("GENACCEL_NATIVE_ISA");
    if (!GENACCEL_AVX512 || (isa && std::strcmp(isa, "avx2") == 0)) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
           && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")
           && __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512vnni");
  }();
  return has;
}

// Weight formats for dense_rows: simd.h's stored formats, and int8.  x is read in the order load
// gives (in_load_order).  For one row of x, kChains independent chains run along each weight row and
// 4 / kChains weight rows are interleaved.
struct F32W : F32 {
  static constexpr int kChains = 1;
  static constexpr int64_t kAhead = 0;  // prefetch distance of one-row streams (0: ahead()'s)
};
struct I8 {
  using T = int8_t;
  static constexpr int kStep = 8, kChains = 1;
  static constexpr int64_t kAhead = 0;
  static void load(const T* p, __m256* v) {
    v[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  static float load1(const T* p) { return static_cast<float>(*p); }
};
// bfloat16 unpacked sixteen at a time.  For one row of x and rows of fewer than kRowAtATimeBelow weights,
// one weight row at a time (four chains along it), prefetched 2 KiB ahead in that one stream; longer rows
// four interleaved at a time, prefetched at the next rows.  Measured on 2 Zen 3 cores (compiled decode
// steps, old and new kernels in alternate processes): with every row one at a time, the small preset's bf16
// step took 0.90-0.98x the time of eight-wide widening for its rows of 768 (six pairs), but the 1b preset's
// took 1.12-1.18x for its rows of 2048 and 8192 (three pairs); with this split, 0.80-1.16x (1b) and
// 0.92-1.11x (small) in three pairs each, within this machine's swings.
constexpr int64_t kRowAtATimeBelow = 2048;
struct BF16Row : BF16Unpack {
  static constexpr int kChains = 4;
  static constexpr int64_t kAhead = 2048;
};
struct BF16W : BF16Unpack {
  static constexpr int kChains = 1;
  static constexpr int64_t kAhead = 0;
};

// x's rows (k features each) in the order W::load gives each full kStep weights; the features after
// the last full kStep keep their places.
template <class W>
lines<float> in_load_order(const float* xf, int64_t rows, int64_t k) {
  lines<float> out(xf, xf + rows * k);
  const int64_t kfull = k - k % W::kStep;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < kfull; ++i) out[r * k + i] = xf[r * k + W::feature(i)];
  return out;
}

// Output rows computed together, for R rows of x: 4 independent chains at most 8 accumulators.
constexpr int out_block(int R) { return R == 1 ? 4 : (R == 2 ? 2 : 1); }

// y[r][o] = sum_k x[r][k] * w[o][k] for o in [o0, o1): float accumulation, unscaled; x in the order W::load gives.
// B output rows at a time, C chains of kStep weights along each row.
template <class W, int R, int B, int C>
void dense_rows(const float* x, const typename W::T* w, float* y, int64_t k, int64_t out, int64_t o0, int64_t o1) {
  constexpr int V = W::kStep / 8, S = C * W::kStep;  // vectors per load, weights per step of a row
  constexpr int64_t line = 64 / sizeof(typename W::T);  // weights in a cache line
  constexpr int64_t unit = S > line ? S : line;
  const int64_t dist = B == 1 && W::kAhead ? W::kAhead : ahead(B, k * sizeof(typename W::T));
  const int64_t kfull = k - k % W::kStep;
  auto rows = [&](auto Bc, int64_t o) {
    constexpr int BB = decltype(Bc)::value;
    __m256 acc[BB][R][C];
    for (int b = 0; b < BB; ++b)
      for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) acc[b][r][c] = _mm256_setzero_ps();
    auto step = [&](int64_t i, auto n) {  // n (<= C) loads of each row from feature i
      constexpr int N = decltype(n)::value;
      for (int c = 0; c < N; ++c) {
        __m256 xv[R][V];
        for (int r = 0; r < R; ++r)
          for (int v = 0; v < V; ++v) xv[r][v] = _mm256_loadu_ps(x + r * k + i + c * W::kStep + 8 * v);
        for (int b = 0; b < BB; ++b) {
          __m256 wv[V];
          W::load(w + (o + b) * k + i + c * W::kStep, wv);
          for (int v = 0; v < V; ++v)
            for (int r = 0; r < R; ++r) acc[b][r][c] = _mm256_fmadd_ps(wv[v], xv[r][v], acc[b][r][c]);
        }
      }
    };
    int64_t i = 0;
    for (; i + unit <= kfull; i += unit) {  // the cache lines ahead prefetched
      for (int b = 0; b < BB; ++b)
        for (int64_t l = 0; l < unit; l += line)
          _mm_prefetch(reinterpret_cast<const char*>(w + (o + b) * k + i + l) + dist, _MM_HINT_T0);
      for (int64_t j = 0; j < unit; j += S) step(i + j, std::integral_constant<int, C>{});
    }
    for (; i < kfull; i += W::kStep) step(i, std::integral_constant<int, 1>{});
    for (int b = 0; b < BB; ++b)
      for (int r = 0; r < R; ++r) {
        __m256 a = acc[b][r][0];
        for (int c = 1; c < C; ++c) a = _mm256_add_ps(a, acc[b][r][c]);
        float s = hsum(a);
        for (int64_t i = kfull; i < k; ++i) s += x[r * k + i] * W::load1(w + (o + b) * k + i);
        y[r * out + o + b] = s;
      }
  };
  int64_t o = o0;
  for (; o + B <= o1; o += B) rows(std::integral_constant<int, B>{}, o);
  for (; o < o1; ++o) rows(std::integral_constant<int, 1>{}, o);  // the rows left over by the blocks
}

// Chunk c (32 bytes: 64 features) of output row o of int4 weights with k features (module comment).
inline const uint8_t* int4_chunk(const uint8_t* packed, int64_t o, int64_t k, int64_t c) {
  return packed + (o >> 2) * 2 * k + c * 128 + (o & 3) * 32;
}

// The rows of x quantized to int8 in blocks of `block` features (a multiple of 8), a float scale per
// block (x ~ d * q, q rounded to nearest even as nearbyint does), each block's float sum and the integer
// sum of its q: the input side of the int4 and int8 products.
struct QuantRows {
  lines<int8_t> q;
  lines<float> d, sum;
  lines<int32_t> qsum;
};

QuantRows quantize_rows(const float* x, int64_t rows, int64_t k, int64_t block) {
  const int64_t n = rows * k / block;
  QuantRows out{lines<int8_t>(rows * k), lines<float>(n), lines<float>(n), lines<int32_t>(n)};
  const __m256 sign = _mm256_set1_ps(-0.f);
  for (int64_t b = 0; b < n; ++b) {
    const float* xb = x + b * block;
    __m256 amax = _mm256_setzero_ps(), sum = _mm256_setzero_ps();
    for (int64_t i = 0; i < block; i += 8) {
      const __m256 v = _mm256_loadu_ps(xb + i);
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v));
      sum = _mm256_add_ps(sum, v);
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    const float top = _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
    const __m256 inv = _mm256_set1_ps(top > 0.f ? 127.f / top : 0.f);
    out.d[b] = top / 127.f;
    out.sum[b] = hsum(sum);
    __m256i qsum = _mm256_setzero_si256();
    for (int64_t i = 0; i < block; i += 8) {
      const __m256i q = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + i), inv));
      qsum = _mm256_add_epi32(qsum, q);
      const __m128i words = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out.q.data() + b * block + i), _mm_packs_epi16(words, words));
    }
    __m128i total = _mm_add_epi32(_mm256_castsi256_si128(qsum), _mm256_extracti128_si256(qsum, 1));
    total = _mm_add_epi32(total, _mm_shuffle_epi32(total, 0x4E));
    out.qsum[b] = _mm_cvtsi128_si32(_mm_add_epi32(total, _mm_shuffle_epi32(total, 0xB1)));
  }
  return out;
}

// int4: y[r][o] = sum_g scale_g * d_rg * (sum_{i in g} q_i xq_i - 8 * sum_{i in g} xq_i) + zero_g * sum_{i in g} x_i,
// x quantized per group: the exact integer sum of (q - 8) * xq, taken as q * xq (maddubs of the unsigned
// nibbles and the signed inputs: pair sums of at most 2 * 15 * 127) less 8 times the inputs' integer sum
// (quantize_rows gives it per group).  Each 32-byte chunk (64 features) is one load, two masks and a
// shift; each block of 32 features one maddubs and one 16-bit add per row of x.  The 16-bit sums are
// widened every 8 blocks (8 * 3810 < 2^15) and at a group's end.  There the up to four interleaved
// output rows are summed into the lanes of one vector and meet their scales and zero points together.
// On 2 Zen 3 cores the 1B-class preset's decode weights (626 MiB, model order, cold) took 0.70-0.72x the
// int8 kernel's time on the same shapes where signed weights (sign-trick maddubs) and scalar scales per
// output row and group had taken 0.95x (each timed beside int8 in one process; before the rows were interleaved).
// xq, xd, xsum, xqsum: quantize_rows of the R rows over the groups.
template <int R>
void int4_rows(const int8_t* xq, const float* xd, const float* xsum, const int32_t* xqsum, const uint8_t* packed,
               const uint16_t* scale_zero, float* y, int64_t k, int64_t out, int64_t group, int64_t o0, int64_t o1) {
  constexpr int B = out_block(R);
  const int64_t dist = kPrefetch;  // four interleaved rows are one contiguous stream
  const int64_t groups = k / group, per_group = group / 32;
  const __m256i ones = _mm256_set1_epi16(1), mask = _mm256_set1_epi8(0x0F);
  const __m128i high = _mm_set1_epi32(static_cast<int32_t>(0xFFFF0000u));
  auto run = [&](auto Bc, int64_t o) {
    constexpr int BB = decltype(Bc)::value;
    __m256i acc[4][R];  // rows past BB stay zero
    __m128i dot[R];  // lane b: the group's integer sum for output row o + b
    __m128 tot[R];  // lane b: output row o + b
    for (int r = 0; r < R; ++r) {
      tot[r] = _mm_setzero_ps(), dot[r] = _mm_setzero_si128();
      for (int b = 0; b < 4; ++b) acc[b][r] = _mm256_setzero_si256();
    }
    int64_t left = per_group, g = 0;  // blocks left in group g
    const uint16_t* sz_row = scale_zero + o * groups * 2;
    // one block of 32 features (the nibbles q of each output row) into acc; widened into dot every 8
    // blocks; at a group's end, scaled into tot
    auto block = [&](const __m256i (&q)[BB], int64_t blk) {
      for (int r = 0; r < R; ++r) {
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + r * k + blk * 32));
        for (int b = 0; b < BB; ++b) acc[b][r] = _mm256_add_epi16(acc[b][r], _mm256_maddubs_epi16(q[b], xv));
      }
      if ((--left & 7) != 0) return;
      for (int r = 0; r < R; ++r) {
        __m256i wide[4];
        for (int b = 0; b < 4; ++b) wide[b] = b < BB ? _mm256_madd_epi16(acc[b][r], ones) : _mm256_setzero_si256();
        dot[r] = _mm_add_epi32(dot[r], hsum4(wide[0], wide[1], wide[2], wide[3]));
        for (int b = 0; b < BB; ++b) acc[b][r] = _mm256_setzero_si256();
      }
      if (left) return;
      int32_t word[4] = {0, 0, 0, 0};  // each row's bf16 scale (low half) and zero point (high half)
      for (int b = 0; b < BB; ++b) std::memcpy(&word[b], sz_row + (b * groups + g) * 2, 4);
      const __m128i sz = _mm_setr_epi32(word[0], word[1], word[2], word[3]);
      const __m128 s = _mm_castsi128_ps(_mm_slli_epi32(sz, 16)), z = _mm_castsi128_ps(_mm_and_si128(sz, high));
      for (int r = 0; r < R; ++r) {
        const int64_t i = r * groups + g;
        const __m128i exact = _mm_sub_epi32(dot[r], _mm_set1_epi32(8 * xqsum[i]));
        tot[r] = _mm_fmadd_ps(_mm_cvtepi32_ps(exact), _mm_mul_ps(s, _mm_set1_ps(xd[i])), tot[r]);
        tot[r] = _mm_fmadd_ps(z, _mm_set1_ps(xsum[i]), tot[r]);
        dot[r] = _mm_setzero_si128();
      }
      left = per_group, ++g;
    };
    for (int64_t c = 0; c < k / 64; ++c) {
      __m256i bytes[BB], q[BB];
      const char* ahead_of = reinterpret_cast<const char*>(int4_chunk(packed, o & ~int64_t{3}, k, c)) + dist;
      _mm_prefetch(ahead_of, _MM_HINT_T0);
      _mm_prefetch(ahead_of + 64, _MM_HINT_T0);
      for (int b = 0; b < BB; ++b) {
        bytes[b] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(int4_chunk(packed, o + b, k, c)));
        q[b] = _mm256_and_si256(bytes[b], mask);  // features 0-31 of the chunk
      }
      block(q, 2 * c);
      for (int b = 0; b < BB; ++b) q[b] = _mm256_and_si256(_mm256_srli_epi16(bytes[b], 4), mask);  // 32-63
      block(q, 2 * c + 1);
    }
    for (int r = 0; r < R; ++r) {
      float lanes[4];
      _mm_storeu_ps(lanes, tot[r]);
      for (int b = 0; b < BB; ++b) y[r * out + o + b] = lanes[b];
    }
  };
  int64_t o = o0;
  for (; o + B <= o1; o += B) run(std::integral_constant<int, B>{}, o);
  for (; o < o1; ++o) run(std::integral_constant<int, 1>{}, o);
}

// int8 over repacked weights (pack_int8_rows): each group of 4 output rows is one stream of 128-byte
// chunks, the 32 weights of a block of features for each of the 4 rows in turn.  The rows of x are
// quantized to int8 per 32 features (llama.cpp's q8_0 inputs); each block's dot is exact in integers
// (maddubs of |w| and x carrying w's sign: pair sums of at most 2 * 128 * 127) and meets the block's
// scale in float.  Rows of the group outside [o0, o1) are computed and not written.
template <int R>
void int8_rows(const int8_t* xq, const float* xd, const int8_t* packed, float* y, int64_t k, int64_t out,
               int64_t o0, int64_t o1) {
  const int64_t blocks = k / 32;
  const int64_t dist = ahead(1, 4 * k);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t g = o0 / 4; g * 4 < o1; ++g) {
    const int8_t* p = packed + g * 4 * k;
    __m256 acc[4][R];
    for (int b = 0; b < 4; ++b)
      for (int r = 0; r < R; ++r) acc[b][r] = _mm256_setzero_ps();
    for (int64_t c = 0; c < blocks; ++c, p += 128) {
      _mm_prefetch(reinterpret_cast<const char*>(p + dist), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(p + dist + 64), _MM_HINT_T0);
      __m256i xv[R];
      __m256 dv[R];
      for (int r = 0; r < R; ++r) {
        xv[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + r * k + c * 32));
        dv[r] = _mm256_set1_ps(xd[r * blocks + c]);
      }
      for (int b = 0; b < 4; ++b) {
        const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + b * 32));
        const __m256i magnitude = _mm256_sign_epi8(w, w);
        for (int r = 0; r < R; ++r) {
          const __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(xv[r], w)), ones);
          acc[b][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), dv[r], acc[b][r]);
        }
      }
    }
    for (int b = 0; b < 4; ++b) {
      const int64_t o = g * 4 + b;
      if (o >= o0 && o < o1 && o < out)
        for (int r = 0; r < R; ++r) y[r * out + o] = hsum(acc[b][r]);
    }
  }
}

// x (rows, k) of any float dtype as contiguous float32: x's own data where it is float32, a converted copy otherwise.
struct FloatRows {
  lines<float> copy;
  const float* direct = nullptr;
  const float* p() const { return direct ? direct : copy.data(); }
};

FloatRows as_float(const at::Tensor& x) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous(), "genaccel_cpu: inputs must be contiguous CPU tensors");
  const int64_t n = x.numel();
  FloatRows out;
  switch (x.scalar_type()) {
    case at::kFloat: out.direct = x.const_data_ptr<float>(); break;
    case at::kBFloat16: {
      auto p = x.const_data_ptr<c10::BFloat16>();
      out.copy.resize(n);
      for (int64_t i = 0; i < n; ++i) out.copy[i] = static_cast<float>(p[i]);
      break;
    }
    case at::kHalf: {
      auto p = x.const_data_ptr<c10::Half>();
      out.copy.resize(n);
      for (int64_t i = 0; i < n; ++i) out.copy[i] = static_cast<float>(p[i]);
      break;
    }
    default: TORCH_CHECK(false, "genaccel_cpu: inputs must be float32, bfloat16 or float16, not ", x.scalar_type());
  }
  return out;
}

// One weight of a group multiplied by the same x: its output rows, their scales (or null) and bias (or null)
// as float32, and where its products go: yf (rows, out) in float32 before the epilogue.
struct Part {
  int64_t out = 0;
  const float* scale = nullptr;
  at::Tensor bias_rows;  // alive while bias points into it
  FloatRows bias_f;
  lines<float> buffer;
  float* yf = nullptr;
};

// The products of x with the weights of all the parts, side by side: y (..., sum of outs) in x's dtype, part
// j's outputs in its columns from the sum of the outs before it.  Splits the parts' output rows (one
// part after another) between threads and runs `rows_fn(part, R, r0, y, o0, o1)` over each part's rows
// [o0, o1) a thread holds and the rows of x in chunks of kRows rows from row r0, writing y (R, out) in
// float32; each thread then scales, adds the bias to and converts its own output rows.  float32 results
// of one row of x are written in place.  One parallel region for all the parts: the weights that read the
// same x (a layer's query, key and value projections) stream one after another in each thread, x
// converted or quantized once.
template <class Fn>
at::Tensor few_rows(const at::Tensor& x, const std::vector<int64_t>& outs,
                    const std::vector<c10::optional<at::Tensor>>& scales,
                    const std::vector<c10::optional<at::Tensor>>& biases, Fn rows_fn) {
  const int64_t k = x.size(-1), rows = x.numel() / k, n = static_cast<int64_t>(outs.size());
  const at::ScalarType dtype = x.scalar_type();
  std::vector<int64_t> start(n + 1, 0);
  for (int64_t j = 0; j < n; ++j) start[j + 1] = start[j] + outs[j];
  const int64_t total = start[n];
  auto sizes = x.sizes().vec();
  sizes.back() = total;
  at::Tensor y = at::empty(sizes, x.options());
  void* yp = y.data_ptr();
  const bool in_place = dtype == at::kFloat && rows == 1;
  std::vector<Part> parts(n);
  for (int64_t j = 0; j < n; ++j) {
    Part& part = parts[j];
    part.out = outs[j];
    if (scales[j]) {
      const at::Tensor& sc = *scales[j];
      TORCH_CHECK(sc.scalar_type() == at::kFloat && sc.numel() == part.out && sc.is_contiguous(),
                  "genaccel_cpu: scale must be ", part.out, " contiguous float32 values");
      part.scale = sc.const_data_ptr<float>();
    }
    if (biases[j]) {
      TORCH_CHECK(biases[j]->numel() == part.out, "genaccel_cpu: bias must have ", part.out, " values");
      part.bias_rows = biases[j]->contiguous();
      part.bias_f = as_float(part.bias_rows);
    }
    part.buffer = lines<float>(in_place ? 0 : rows * part.out);
    part.yf = in_place ? static_cast<float*>(yp) + start[j] : part.buffer.data();
  }
  // about 256 KiB of weight per task: few enough tasks for two to eight threads, each streaming its rows
  const int64_t grain = std::max<int64_t>(16, (int64_t{1} << 18) / std::max<int64_t>(k, 1));
  at::parallel_for(0, total, grain, [&](int64_t begin, int64_t end) {
    for (int64_t j = 0; j < n; ++j) {
      const int64_t o0 = std::max(begin, start[j]) - start[j], o1 = std::min(end, start[j + 1]) - start[j];
      if (o0 >= o1) continue;
      const Part& part = parts[j];
      const int64_t out = part.out;
      for (int64_t r0 = 0; r0 < rows; r0 += kRows) {
        const int R = static_cast<int>(std::min<int64_t>(kRows, rows - r0));
        rows_fn(static_cast<int>(j), R, r0, part.yf + r0 * out, o0, o1);
      }
      const float* bp = part.bias_rows.defined() ? part.bias_f.p() : nullptr;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t o = o0; o < o1; ++o) {
          float v = part.yf[r * out + o];
          if (part.scale) v *= part.scale[o];
          if (bp) v += bp[o];
          const int64_t i = r * total + start[j] + o;
          switch (dtype) {
            case at::kFloat: static_cast<float*>(yp)[i] = v; break;
            case at::kBFloat16: static_cast<c10::BFloat16*>(yp)[i] = c10::BFloat16(v); break;
            default: static_cast<c10::Half*>(yp)[i] = c10::Half(v);
          }
        }
    }
  });
  return y;
}

// A list of optional tensors (a schema's Tensor?[]) as a vector, checked to have n entries.
std::vector<c10::optional<at::Tensor>> optionals(const c10::List<c10::optional<at::Tensor>>& list, int64_t n,
                                                 const char* what) {
  TORCH_CHECK(static_cast<int64_t>(list.size()) == n, "genaccel_cpu: ", n, " weights but ", list.size(), " ", what);
  std::vector<c10::optional<at::Tensor>> out;
  for (const c10::optional<at::Tensor>& t : list) out.push_back(t);
  return out;
}

template <class W>
void dense_dispatch(int R, const float* x, const typename W::T* w, float* y, int64_t k, int64_t out, int64_t o0, int64_t o1) {
  switch (R) {
    case 1: return dense_rows<W, 1, out_block(1) / W::kChains, W::kChains>(x, w, y, k, out, o0, o1);
    case 2: return dense_rows<W, 2, out_block(2), 1>(x, w, y, k, out, o0, o1);
    case 3: return dense_rows<W, 3, out_block(3), 1>(x, w, y, k, out, o0, o1);
    default: return dense_rows<W, 4, out_block(4), 1>(x, w, y, k, out, o0, o1);
  }
}

// x @ w.T (* scale per output row) (+ bias) for each w of ws, all float32, all bfloat16 or all int8 (out_j, k),
// side by side in one tensor (..., sum of out_j) of x's dtype, in one parallel region.
at::Tensor gemv_many(const at::Tensor& x_in, at::TensorList ws, const c10::List<c10::optional<at::Tensor>>& scale,
                     const c10::List<c10::optional<at::Tensor>>& bias) {
  const at::Tensor x = x_in.contiguous();  // a view (a slice of another call's output) is copied
  const int64_t n = static_cast<int64_t>(ws.size()), k = x.size(-1);
  TORCH_CHECK(n > 0, "genaccel_cpu.gemv: no weights");
  std::vector<int64_t> outs;
  for (const at::Tensor& w : ws) {
    TORCH_CHECK(w.dim() == 2 && w.is_contiguous() && w.device().is_cpu(), "genaccel_cpu.gemv: w must be a contiguous 2-D CPU tensor");
    TORCH_CHECK(k == w.size(1), "genaccel_cpu.gemv: x has ", k, " features, w ", w.size(1));
    TORCH_CHECK(w.scalar_type() == ws[0].scalar_type(), "genaccel_cpu.gemv: the weights of one call must share a dtype");
    outs.push_back(w.size(0));
  }
  const auto scales = optionals(scale, n, "scales"), biases = optionals(bias, n, "biases");
  const FloatRows xf = as_float(x);
  switch (ws[0].scalar_type()) {
    case at::kFloat:
      return few_rows(x, outs, scales, biases, [&](int j, int R, int64_t r0, float* yr, int64_t o0, int64_t o1) {
        dense_dispatch<F32W>(R, xf.p() + r0 * k, ws[j].const_data_ptr<float>(), yr, k, outs[j], o0, o1);
      });
    case at::kBFloat16: {
      if (x.scalar_type() == at::kBFloat16 && avx512_kernels()) {  // bf16 dot products
        auto xp = reinterpret_cast<const uint16_t*>(x.const_data_ptr<c10::BFloat16>());
        return few_rows(x, outs, scales, biases, [&](int j, int R, int64_t r0, float* yr, int64_t o0, int64_t o1) {
          auto wp = reinterpret_cast<const uint16_t*>(ws[j].const_data_ptr<c10::BFloat16>());
          genaccel_avx512::bf16_rows(R, xp + r0 * k, wp, yr, k, outs[j], o0, o1);
        });
      }
      const lines<float> xo = in_load_order<BF16W>(xf.p(), x.numel() / k, k);  // BF16Row's order too
      const bool row_at_a_time = k < kRowAtATimeBelow;
      return few_rows(x, outs, scales, biases, [&](int j, int R, int64_t r0, float* yr, int64_t o0, int64_t o1) {
        auto wp = reinterpret_cast<const uint16_t*>(ws[j].const_data_ptr<c10::BFloat16>());
        if (row_at_a_time) dense_dispatch<BF16Row>(R, xo.data() + r0 * k, wp, yr, k, outs[j], o0, o1);
        else dense_dispatch<BF16W>(R, xo.data() + r0 * k, wp, yr, k, outs[j], o0, o1);
      });
    }
    case at::kChar:
      return few_rows(x, outs, scales, biases, [&](int j, int R, int64_t r0, float* yr, int64_t o0, int64_t o1) {
        dense_dispatch<I8>(R, xf.p() + r0 * k, ws[j].const_data_ptr<int8_t>(), yr, k, outs[j], o0, o1);
      });
    default: TORCH_CHECK(false, "genaccel_cpu.gemv: weights must be float32, bfloat16 or int8, not ", ws[0].scalar_type());
  }
}

// x @ w.T (* scale per output row) (+ bias), w float32, bfloat16 or int8 (out, k), in x's dtype.
at::Tensor gemv(const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& scale,
                const c10::optional<at::Tensor>& bias) {
  return gemv_many(x, {w}, c10::List<c10::optional<at::Tensor>>({scale}), c10::List<c10::optional<at::Tensor>>({bias}));
}

void check_int4(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& scale_zero, int64_t group) {
  TORCH_CHECK(packed.scalar_type() == at::kByte && packed.dim() == 2 && packed.is_contiguous(),
              "genaccel_cpu: packed int4 weights must be contiguous uint8 (out rounded up to 4, in / 2)");
  TORCH_CHECK(scale_zero.dim() == 3 && packed.size(0) == (scale_zero.size(0) + 3) / 4 * 4,
              "genaccel_cpu: packed int4 weights must have the rows of scale_zero (out, groups, 2) rounded up to 4");
  const int64_t k = packed.size(1) * 2;
  TORCH_CHECK(k % 64 == 0, "genaccel_cpu: int4 weights need a multiple of 64 input features, not ", k);
  TORCH_CHECK(group % 32 == 0 && group <= 512 && k % group == 0,  // 16 blocks of 16-bit pair sums at most
              "genaccel_cpu: the group size must be a multiple of 32, at most 512, dividing ", k, "; got ", group);
  TORCH_CHECK(scale_zero.scalar_type() == at::kBFloat16 && scale_zero.is_contiguous()
              && scale_zero.size(1) == k / group && scale_zero.size(2) == 2,
              "genaccel_cpu: scale_zero must be contiguous bfloat16 (out, in / group, 2)");
  TORCH_CHECK(!x.defined() || x.size(-1) == k, "genaccel_cpu: x has ", x.size(-1), " features, the weights ", k);
}

// x @ W.T (+ bias) for each group-wise int4 W of packed and scale_zero (all in groups of `group` features), side
// by side in one tensor (..., sum of the Ws' rows) of x's dtype, in one parallel region (x quantized once).
at::Tensor gemv_int4_many(const at::Tensor& x_in, at::TensorList packed, at::TensorList scale_zero, int64_t group,
                          const c10::List<c10::optional<at::Tensor>>& bias) {
  const at::Tensor x = x_in.contiguous();  // a view (a slice of another call's output) is copied
  const int64_t n = static_cast<int64_t>(packed.size());
  TORCH_CHECK(n > 0 && static_cast<int64_t>(scale_zero.size()) == n, "genaccel_cpu.gemv_int4: ", n,
              " weights but ", scale_zero.size(), " scale_zero tensors");
  std::vector<int64_t> outs;
  for (int64_t j = 0; j < n; ++j) {
    check_int4(x, packed[j], scale_zero[j], group);
    outs.push_back(scale_zero[j].size(0));
  }
  const int64_t k = x.size(-1), groups = k / group, rows = x.numel() / k;
  const FloatRows xf = as_float(x);
  const QuantRows xq = quantize_rows(xf.p(), rows, k, group);
  const bool avx512 = avx512_kernels();
  return few_rows(x, outs, std::vector<c10::optional<at::Tensor>>(n), optionals(bias, n, "biases"),
                  [&](int j, int R, int64_t r0, float* yr, int64_t o0, int64_t o1) {
    const int8_t* q = xq.q.data() + r0 * k;
    const float *d = xq.d.data() + r0 * groups, *xs = xq.sum.data() + r0 * groups;
    const int32_t* qs = xq.qsum.data() + r0 * groups;
    const uint8_t* wp = packed[j].const_data_ptr<uint8_t>();
    auto sz = reinterpret_cast<const uint16_t*>(scale_zero[j].const_data_ptr<c10::BFloat16>());
    const int64_t out = outs[j];
    if (avx512) return genaccel_avx512::int4_rows(R, q, d, xs, qs, wp, sz, yr, k, out, group, o0, o1);
    switch (R) {
      case 1: return int4_rows<1>(q, d, xs, qs, wp, sz, yr, k, out, group, o0, o1);
      case 2: return int4_rows<2>(q, d, xs, qs, wp, sz, yr, k, out, group, o0, o1);
      case 3: return int4_rows<3>(q, d, xs, qs, wp, sz, yr, k, out, group, o0, o1);
      default: return int4_rows<4>(q, d, xs, qs, wp, sz, yr, k, out, group, o0, o1);
    }
  });
}

// x @ W.T (+ bias) for the group-wise int4 W, in x's dtype.
at::Tensor gemv_int4(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& scale_zero, int64_t group,
                     const c10::optional<at::Tensor>& bias) {
  return gemv_int4_many(x, {packed}, {scale_zero}, group, c10::List<c10::optional<at::Tensor>>({bias}));
}

// int8 weights (out, k) repacked for int8_rows: (ceil(out / 4), 4 * k), rows past out zero.
at::Tensor pack_int8_rows(const at::Tensor& w) {
  TORCH_CHECK(w.scalar_type() == at::kChar && w.dim() == 2 && w.is_contiguous(),
              "genaccel_cpu.pack_int8_rows: weights must be contiguous int8 (out, in)");
  const int64_t out = w.size(0), k = w.size(1), groups = (out + 3) / 4;
  TORCH_CHECK(k % 32 == 0, "genaccel_cpu.pack_int8_rows: int8 weights need a multiple of 32 input features, not ", k);
  at::Tensor packed = at::zeros({groups, 4 * k}, w.options());
  const int8_t* src = w.const_data_ptr<int8_t>();
  int8_t* dst = packed.data_ptr<int8_t>();
  for (int64_t o = 0; o < out; ++o)
    for (int64_t c = 0; c < k / 32; ++c)
      std::memcpy(dst + (o / 4) * 4 * k + c * 128 + (o % 4) * 32, src + o * k + c * 32, 32);
  return packed;
}

// x @ W.T * scale (+ bias) for each int8 W of packed (repacked by pack_int8_rows), one scale per output row,
// side by side in one tensor (..., sum of the Ws' rows) of x's dtype, in one parallel region (x quantized once).
at::Tensor gemv_int8_many(const at::Tensor& x_in, at::TensorList packed, at::TensorList scale,
                          const c10::List<c10::optional<at::Tensor>>& bias) {
  const at::Tensor x = x_in.contiguous();  // a view (a slice of another call's output) is copied
  const int64_t n = static_cast<int64_t>(packed.size()), k = x.size(-1);
  TORCH_CHECK(n > 0 && static_cast<int64_t>(scale.size()) == n, "genaccel_cpu.gemv_int8: ", n, " weights but ",
              scale.size(), " scales");
  std::vector<int64_t> outs;
  std::vector<c10::optional<at::Tensor>> scales;
  for (int64_t j = 0; j < n; ++j) {
    const at::Tensor& p = packed[j];
    TORCH_CHECK(p.scalar_type() == at::kChar && p.dim() == 2 && p.is_contiguous(),
                "genaccel_cpu.gemv_int8: packed weights must come from pack_int8_rows");
    const int64_t out = scale[j].numel();
    TORCH_CHECK(p.size(1) / 4 == k && (out + 3) / 4 == p.size(0),
                "genaccel_cpu.gemv_int8: x has ", k, " features and scale ", out, " rows; the weights ",
                p.size(1) / 4, " and ", p.size(0) * 4);
    outs.push_back(out);
    scales.push_back(scale[j]);
  }
  const int64_t rows = x.numel() / k, blocks = k / 32;
  const FloatRows xf = as_float(x);
  const QuantRows xq = quantize_rows(xf.p(), rows, k, 32);
  const bool avx512 = avx512_kernels();
  return few_rows(x, outs, scales, optionals(bias, n, "biases"),
                  [&](int j, int R, int64_t r0, float* yr, int64_t o0, int64_t o1) {
    const int8_t* q = xq.q.data() + r0 * k;
    const float* d = xq.d.data() + r0 * blocks;
    const int8_t* wp = packed[j].const_data_ptr<int8_t>();
    const int64_t out = outs[j];
    if (avx512) return genaccel_avx512::int8_rows(R, q, d, wp, yr, k, out, o0, o1);
    switch (R) {
      case 1: return int8_rows<1>(q, d, wp, yr, k, out, o0, o1);
      case 2: return int8_rows<2>(q, d, wp, yr, k, out, o0, o1);
      case 3: return int8_rows<3>(q, d, wp, yr, k, out, o0, o1);
      default: return int8_rows<4>(q, d, wp, yr, k, out, o0, o1);
    }
  });
}

// x @ W.T * scale (+ bias) for int8 W repacked by pack_int8_rows, one scale per output row, in x's dtype.
at::Tensor gemv_int8(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& scale,
                     const c10::optional<at::Tensor>& bias) {
  return gemv_int8_many(x, {packed}, {scale}, c10::List<c10::optional<at::Tensor>>({bias}));
}

// The float32 weights (out, in) of the group-wise int4 W (for many-row products).
at::Tensor dequantize_int4(const at::Tensor& packed, const at::Tensor& scale_zero, int64_t group) {
  check_int4(at::Tensor(), packed, scale_zero, group);
  const int64_t out = scale_zero.size(0), k = packed.size(1) * 2, groups = k / group;
  auto wp = packed.const_data_ptr<uint8_t>();
  auto sz = reinterpret_cast<const uint16_t*>(scale_zero.const_data_ptr<c10::BFloat16>());
  at::Tensor w = at::empty({out, k}, packed.options().dtype(at::kFloat));
  float* wf = w.data_ptr<float>();
  at::parallel_for(0, out, 64, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o)
      for (int64_t g = 0; g < groups; ++g) {
        const float s = bf16_to_float(sz[(o * groups + g) * 2]), z = bf16_to_float(sz[(o * groups + g) * 2 + 1]) - 8.f * s;
        for (int64_t i = g * group; i < (g + 1) * group; ++i) {
          const uint8_t byte = int4_chunk(wp, o, k, i / 64)[i % 32];
          const int q = (i % 64) < 32 ? (byte & 0x0F) : (byte >> 4);
          wf[o * k + i] = q * s + z;
        }
      }
  });
  return w;
}

// Weights for oneDNN's u8 x s8 GEMM (many-row products of int4 layers).  Without VNNI its inner
// product adds pairs of u8 * s8 products in 16 bits with saturation (vpmaddubsw), so with inputs of 8 bits the
// weights keep to |w| <= 64 (2 * 255 * 64 < 2^15): each output row's weights as int8 within +-64 and the row's
// scale (w ~ scale * w7).

// From group-wise int4: a row's scale is its largest |weight| over 64 (each group's extremes are its q = 0 and
// q = 15); each group's 16 values become a table of rounded int8 that a byte shuffle looks the nibbles up in.
std::tuple<at::Tensor, at::Tensor> int7_from_int4(const at::Tensor& packed, const at::Tensor& scale_zero, int64_t group) {
  check_int4(at::Tensor(), packed, scale_zero, group);
  const int64_t out = scale_zero.size(0), k = packed.size(1) * 2, groups = k / group;
  auto wp = packed.const_data_ptr<uint8_t>();
  auto sz = reinterpret_cast<const uint16_t*>(scale_zero.const_data_ptr<c10::BFloat16>());
  at::Tensor w7 = at::empty({out, k}, packed.options().dtype(at::kChar));
  at::Tensor scale = at::empty({out}, packed.options().dtype(at::kFloat));
  int8_t* wq = w7.data_ptr<int8_t>();
  float* sp = scale.data_ptr<float>();
  at::parallel_for(0, out, 16, [&](int64_t o0, int64_t o1) {
    std::vector<int8_t> tables(groups * 32);  // per group: its 16 values, twice (one per 128-bit lane)
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    for (int64_t o = o0; o < o1; ++o) {
      const uint16_t* row = sz + o * groups * 2;
      float amax = 0.f;
      for (int64_t g = 0; g < groups; ++g) {
        const float s = bf16_to_float(row[2 * g]), z = bf16_to_float(row[2 * g + 1]);
        amax = std::max({amax, std::abs(z - 8.f * s), std::abs(z + 7.f * s)});
      }
      sp[o] = amax / 64.f;
      const float f = amax > 0.f ? 64.f : 0.f, d = amax > 0.f ? amax : 1.f;  // 64 / amax may overflow, s / amax not
      for (int64_t g = 0; g < groups; ++g) {
        const float s = bf16_to_float(row[2 * g]) / d * f, z = bf16_to_float(row[2 * g + 1]) / d * f;
        for (int q = 0; q < 16; ++q)
          tables[g * 32 + q] = tables[g * 32 + 16 + q] =
              static_cast<int8_t>(std::min(64.f, std::max(-64.f, std::nearbyint((q - 8) * s + z))));
      }
      for (int64_t c = 0; c < k / 64; ++c) {
        const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(int4_chunk(wp, o, k, c)));
        const __m256i first = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(&tables[(c * 64 / group) * 32]));
        const __m256i second = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(&tables[((c * 64 + 32) / group) * 32]));
        int8_t* dst = wq + o * k + c * 64;
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm256_shuffle_epi8(first, _mm256_and_si256(bytes, nibble)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32),
                            _mm256_shuffle_epi8(second, _mm256_and_si256(_mm256_srli_epi16(bytes, 4), nibble)));
      }
    }
  });
  return {w7, scale};
}

}  // namespace

TORCH_LIBRARY(genaccel_cpu, m) {
  m.def("isa() -> str", +[]() -> std::string { return avx512_kernels() ? "avx512" : "avx2"; });
  m.def("gemv(Tensor x, Tensor w, Tensor? scale=None, Tensor? bias=None) -> Tensor");
  m.def("gemv_many(Tensor x, Tensor[] w, Tensor?[] scale, Tensor?[] bias) -> Tensor");
  m.def("gemv_int4(Tensor x, Tensor packed, Tensor scale_zero, int group, Tensor? bias=None) -> Tensor");
  m.def("gemv_int4_many(Tensor x, Tensor[] packed, Tensor[] scale_zero, int group, Tensor?[] bias) -> Tensor");
  m.def("dequantize_int4(Tensor packed, Tensor scale_zero, int group) -> Tensor");
  m.def("pack_int8_rows(Tensor w) -> Tensor");
  m.def("gemv_int8(Tensor x, Tensor packed, Tensor scale, Tensor? bias=None) -> Tensor");
  m.def("gemv_int8_many(Tensor x, Tensor[] packed, Tensor[] scale, Tensor?[] bias) -> Tensor");
  m.def("int7_from_int4(Tensor packed, Tensor scale_zero, int group) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(genaccel_cpu, CPU, m) {
  m.impl("gemv", &gemv);
  m.impl("gemv_many", &gemv_many);
  m.impl("gemv_int4", &gemv_int4);
  m.impl("gemv_int4_many", &gemv_int4_many);
  m.impl("dequantize_int4", &dequantize_int4);
  m.impl("pack_int8_rows", &pack_int8_rows);
  m.impl("gemv_int8", &gemv_int8);
  m.impl("gemv_int8_many", &gemv_int8_many);
  m.impl("int7_from_int4", &int7_from_int4);
}

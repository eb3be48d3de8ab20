// One-token attention over a KV cache for decode steps on x86 CPUs with AVX2 and FMA: each query
// attends to the cached keys it may see (valid, at or before its position, within a sliding window),
// reading every key and value row once from memory for all the query heads that share it (GQA).
//
// Work items are (batch row, KV head) pairs split between threads (ATen's parallel_for).  An item
// computes the scores of its query heads in float32 (keys in float32 or bfloat16, converted in
// registers: bfloat16 rows sixteen values at a time in BF16Unpack's order, the queries read in that
// order and the outputs written back from it), a masked softmax (a vectorized exp; masked keys weigh
// exactly zero) and the weighted sum of the values, normalized once at the end.  Two passes over the item's rows (keys, then values)
// replace Inductor's flex-attention template, which is tiled for many queries: with one query it read
// the small preset's cache at ~12 GB/s where plain streaming reads reach ~19, and its bfloat16 cache
// slower than its float32 one (a compiled call over 12 heads x 560 positions: 830 against 570 us).

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "simd.h"

namespace {

using namespace genaccel_simd;

// exp of eight floats x <= 0 (softmax weights: scores less their maximum): 2^n 2^f with n = round(x log2 e)
// and 2^f, |f| <= 1/2, by its Taylor series to the 6th power (relative error ~2e-7); under -87.3, ~1e-38.
inline __m256 exp8_nonpositive(__m256 x) {
  const __m256 t = _mm256_mul_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(1.44269504088896341f));
  const __m256 n = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_mul_ps(_mm256_sub_ps(t, n), _mm256_set1_ps(0.693147180559945f));  // 2^(t-n) = e^f
  __m256 y = _mm256_set1_ps(1.f / 720);
  y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(1.f / 120));
  y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(1.f / 24));
  y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(1.f / 6));
  y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(0.5f));
  y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(1.f));
  y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(1.f));
  const __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
  return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(y), e));
}

struct Shape {
  int64_t L, g;                 // keys read, query heads per KV head
  int64_t k_row, v_row;         // strides of a key and a value row (elements)
  int64_t pos, window;          // the query's position (-1: none) and sliding window (0: none)
  float scale, softcap;         // softcap 0: none
};

// Prefetch the row of a head's keys or values `bytes` long that the loads reach ahead(1, bytes) after `p`.
inline void prefetch_row(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p) + ahead(1, bytes);
  for (int64_t o = 0; o < bytes; o += 64) _mm_prefetch(c + o, _MM_HINT_T0);
}

// The sums of each of four vectors, as one vector of four.
inline __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d), abcd = _mm256_hadd_ps(ab, cd);
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

// f(c, vector c) for the C float vectors of a row of 8 * C values, loaded KV::kStep at a time.
template <typename KV, int C, typename F>
inline void for_vectors(const typename KV::T* row, F&& f) {
  constexpr int V = KV::kStep / 8;
  for (int c = 0; c < C; c += V) {
    __m256 w[V];
    KV::load(row + 8 * c, w);
    for (int v = 0; v < V; ++v) f(c + v, w[v]);
  }
}

// q . row as a vector of partial sums (two chains) for a row of 8 * C values in W's format, q in the order
// W::load gives.
template <typename W, int C>
inline __m256 dot(const __m256 (&qv)[C], const typename W::T* row) {
  __m256 a[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  for_vectors<W, C>(row, [&](int c, __m256 w) { a[c & 1] = _mm256_fmadd_ps(qv[c], w, a[c & 1]); });
  return _mm256_add_ps(a[0], a[1]);
}

// o += p * row for a row of 8 * C values in W's format.
template <typename W, int C>
inline void add_scaled(__m256 (&o)[C], __m256 pv, const typename W::T* row) {
  for_vectors<W, C>(row, [&](int c, __m256 w) { o[c] = _mm256_fmadd_ps(pv, w, o[c]); });
}

// Query heads 0..g-1 (q: g x D floats, each head in the order KV::load gives) over the keys kb and values
// vb of their KV head, D = 8 * C: out (g x D floats, in the same order).  scores: g x (L + 1) floats of scratch.
// Each key and value row is read from memory once for all g heads: a block of rows is prefetched and
// loaded, then every head takes it from L1 (a head at a time re-read the rows from L2 for the 2nd to gth
// heads: the 1B-class preset's GQA attention read its cache at ~11 GB/s in float32, ~8 in bfloat16).
// Shared: g > 1 (g == 1 compiles without the sharing).
template <typename KV, int C, bool Shared>
void attend(const float* q, const typename KV::T* kb, const typename KV::T* vb, const bool* valid, const Shape& s,
            float* out, float* scores) {
  constexpr int D = 8 * C;  // floats per row
  constexpr int64_t row_bytes = D * sizeof(typename KV::T);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const int64_t L = s.L, g = Shared ? s.g : 1;
  // the keys a query may see lie in [lo, hi): its position and window bound them, validity masks inside
  const int64_t hi = s.pos < 0 ? L : std::min(L, s.pos + 1);
  const int64_t lo = s.window > 0 && s.pos >= 0 ? std::max<int64_t>(0, s.pos - s.window + 1) : 0;
  for (int64_t i = 0; i < g; ++i) {
    std::fill(scores + i * L, scores + i * L + lo, neg_inf);
    std::fill(scores + i * L + hi, scores + (i + 1) * L, neg_inf);
  }
  auto query = [&](int64_t i, __m256 (&qv)[C]) {
    for (int c = 0; c < C; ++c) qv[c] = _mm256_loadu_ps(q + i * D + 8 * c);
  };
  // bfloat16 rows shared by several heads are converted once, into float32 rows in L1
  constexpr bool narrow = sizeof(typename KV::T) == 2;
  constexpr bool convert = narrow && Shared;
  alignas(64) float block[convert ? 8 : 1][D];
  auto to_block = [&](const typename KV::T* row0, int64_t stride, int64_t n) {
    for (int64_t r = 0; r < n; ++r)
      for_vectors<KV, C>(row0 + r * stride, [&](int c, __m256 w) { _mm256_store_ps(block[r] + 8 * c, w); });
  };
  __m256 q0[C];  // the one head's query, kept in registers
  query(0, q0);
  int64_t j = lo;
  for (; j + 4 <= hi; j += 4) {  // four keys at a time, each head's four scores summed together
    for (int r = 0; r < 4; ++r) prefetch_row(kb + (j + r) * s.k_row, row_bytes);
    if (convert) to_block(kb + j * s.k_row, s.k_row, 4);
    for (int64_t i = 0; i < g; ++i) {
      __m256 qv[C], a[4];
      if (Shared) query(i, qv);
      else std::copy(q0, q0 + C, qv);
      for (int r = 0; r < 4; ++r) a[r] = convert ? dot<F32, C>(qv, block[r]) : dot<KV, C>(qv, kb + (j + r) * s.k_row);
      _mm_storeu_ps(scores + i * L + j, _mm_mul_ps(hsum4(a[0], a[1], a[2], a[3]), _mm_set1_ps(s.scale)));
    }
  }
  for (; j < hi; ++j)
    for (int64_t i = 0; i < g; ++i) {
      __m256 qv[C];
      query(i, qv);
      scores[i * L + j] = hsum(dot<KV, C>(qv, kb + j * s.k_row)) * s.scale;
    }
  float* total = scores + g * L;  // each head's softmax sum
  for (int64_t i = 0; i < g; ++i) {  // each head's masked softmax, unnormalized (total: its sum)
    float* si = scores + i * L;
    float m = neg_inf;
    j = lo;
    if (s.softcap <= 0.f) {  // masked keys to -inf and the maximum, eight at a time
      __m256 mx = _mm256_set1_ps(neg_inf);
      for (; j + 8 <= hi; j += 8) {
        const __m256i seen = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(valid + j)));
        const __m256 keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(seen, _mm256_setzero_si256()));
        const __m256 x = _mm256_blendv_ps(_mm256_set1_ps(neg_inf), _mm256_loadu_ps(si + j), keep);
        _mm256_storeu_ps(si + j, x);
        mx = _mm256_max_ps(mx, x);
      }
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, mx);
      m = *std::max_element(lanes, lanes + 8);
    }
    for (; j < hi; ++j) {
      float x = si[j];
      if (s.softcap > 0.f) x = std::tanh(x / s.softcap) * s.softcap;
      si[j] = x = valid[j] ? x : neg_inf;
      m = std::max(m, x);
    }
    total[i] = 0.f;
    if (m == neg_inf) {  // nothing visible: zero weights, zero output
      std::fill(si + lo, si + hi, 0.f);
      continue;
    }
    const __m256 mv = _mm256_set1_ps(m), ninf = _mm256_set1_ps(neg_inf);
    __m256 sum = _mm256_setzero_ps();
    for (j = lo; j + 8 <= hi; j += 8) {
      const __m256 x = _mm256_loadu_ps(si + j);
      const __m256 e = _mm256_and_ps(exp8_nonpositive(_mm256_sub_ps(x, mv)), _mm256_cmp_ps(x, ninf, _CMP_NEQ_OQ));
      _mm256_storeu_ps(si + j, e);
      sum = _mm256_add_ps(sum, e);
    }
    for (; j < hi; ++j) total[i] += (si[j] = si[j] == neg_inf ? 0.f : std::exp(si[j] - m));
    total[i] += hsum(sum);
  }
  // the weighted sums of the values, each head's in registers over a block of rows (kept in out between
  // blocks): one head's over all rows; several heads' over blocks that stay in L1 (8 rows converted to
  // float32, or 64 rows of float32 values)
  const int64_t rows_at_once = Shared ? (convert ? 8 : 64) : std::max<int64_t>(hi - lo, 1);
  for (int64_t i = 0; i < g; ++i) std::fill(out + i * D, out + (i + 1) * D, 0.f);
  for (int64_t j0 = lo; j0 < hi; j0 += rows_at_once) {
    const int64_t j1 = std::min(hi, j0 + rows_at_once);
    if (convert) {
      for (j = j0; j < j1; ++j) prefetch_row(vb + j * s.v_row, row_bytes);
      to_block(vb + j0 * s.v_row, s.v_row, j1 - j0);
    }
    for (int64_t i = 0; i < g; ++i) {
      const float* si = scores + i * L;
      float* oi = out + i * D;
      __m256 o[C];
      for (int c = 0; c < C; ++c) o[c] = _mm256_loadu_ps(oi + 8 * c);
      for (j = j0; j < j1; ++j) {
        if (i == 0 && !convert) prefetch_row(vb + j * s.v_row, row_bytes);  // the first head reads the rows from memory
        const float p = si[j];
        if (p == 0.f) continue;
        const __m256 pv = _mm256_set1_ps(p);
        if (convert) add_scaled<F32, C>(o, pv, block[j - j0]);
        else add_scaled<KV, C>(o, pv, vb + j * s.v_row);
      }
      for (int c = 0; c < C; ++c) _mm256_storeu_ps(oi + 8 * c, o[c]);
    }
  }
  for (int64_t i = 0; i < g; ++i) {
    const __m256 r = _mm256_set1_ps(total[i] > 0.f ? 1.f / total[i] : 0.f);
    for (int c = 0; c < C; ++c) _mm256_storeu_ps(out + i * D + 8 * c, _mm256_mul_ps(_mm256_loadu_ps(out + i * D + 8 * c), r));
  }
}

template <typename KV, bool Shared>
void attend_d(int64_t D, const float* q, const typename KV::T* kb, const typename KV::T* vb, const bool* valid,
              const Shape& s, float* out, float* scores) {
  switch (D) {
    case 16: return attend<KV, 2, Shared>(q, kb, vb, valid, s, out, scores);
    case 32: return attend<KV, 4, Shared>(q, kb, vb, valid, s, out, scores);
    case 64: return attend<KV, 8, Shared>(q, kb, vb, valid, s, out, scores);
    case 128: return attend<KV, 16, Shared>(q, kb, vb, valid, s, out, scores);
    default: return attend<KV, 32, Shared>(q, kb, vb, valid, s, out, scores);
  }
}

// One work item: the g query heads at q (g x D, float32 or bfloat16) over their KV head's keys and values,
// in the order KV::load gives the rows' values; out (g x D) written in q's order and dtype.
template <typename KV, typename Q>
void attend_item(const Q* q, Q* out, const typename KV::T* kb, const typename KV::T* vb, const bool* valid,
                 const Shape& s, int64_t D, float* qf, float* of, float* scores) {
  const int64_t n = s.g * D;  // D is a multiple of KV::kStep: the heads' orders line up
  for (int64_t i = 0; i < n; ++i) qf[i] = static_cast<float>(q[KV::feature(i)]);
  if (s.g == 1) attend_d<KV, false>(D, qf, kb, vb, valid, s, of, scores);
  else attend_d<KV, true>(D, qf, kb, vb, valid, s, of, scores);
  for (int64_t i = 0; i < n; ++i) out[KV::feature(i)] = Q(of[i]);
}

// softmax(q k^T * scale) v for one query per row: q (B, H, 1, D); k, v (B, H_kv, L, D) in float32 or
// bfloat16 (rows contiguous); key j of row b is seen when valid[b, j], j <= pos (when given) and
// j > pos - window (when window > 0).  Returns (B, 1, H, D) in q's dtype.
at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& valid,
                            const c10::optional<at::Tensor>& pos, int64_t window, double scale, double softcap) {
  TORCH_CHECK(q.dim() == 4 && q.size(2) == 1 && k.dim() == 4 && v.sizes() == k.sizes(),
              "genaccel_cpu.decode_attention: q (B, H, 1, D) and k, v (B, H_kv, L, D)");
  const int64_t B = q.size(0), H = q.size(1), D = q.size(3), Hkv = k.size(1), L = k.size(2);
  TORCH_CHECK(k.size(0) == B && k.size(3) == D && H % Hkv == 0,
              "genaccel_cpu.decode_attention: shapes q ", q.sizes(), ", k ", k.sizes());
  TORCH_CHECK(D == 16 || D == 32 || D == 64 || D == 128 || D == 256,
              "genaccel_cpu.decode_attention: head dimension 16, 32, 64, 128 or 256, not ", D);
  TORCH_CHECK(k.scalar_type() == v.scalar_type() && (k.scalar_type() == at::kFloat || k.scalar_type() == at::kBFloat16),
              "genaccel_cpu.decode_attention: keys and values in float32 or bfloat16");
  TORCH_CHECK(k.stride(3) == 1 && v.stride(3) == 1 && k.stride(2) >= D && v.stride(2) >= D,
              "genaccel_cpu.decode_attention: key and value rows must be contiguous");
  TORCH_CHECK(valid.scalar_type() == at::kBool && valid.dim() == 2 && valid.size(0) == B && valid.size(1) >= L &&
                  valid.stride(1) == 1,
              "genaccel_cpu.decode_attention: valid must be (B, >= L) bool");
  TORCH_CHECK(!pos.has_value() || (pos->scalar_type() == at::kLong && pos->numel() >= 1),
              "genaccel_cpu.decode_attention: pos must be an int64 tensor");
  // read in place, not through tensor ops: the ops around the kernel took 60 of its 248 us a call (profiled)
  Shape s{L, H / Hkv, k.stride(2), v.stride(2), pos.has_value() ? pos->const_data_ptr<int64_t>()[0] : -1, window,
          static_cast<float>(scale), static_cast<float>(softcap)};
  // float32 and bfloat16 queries are read and their outputs written in place by each item; others converted around
  const bool own = q.scalar_type() == at::kFloat || q.scalar_type() == at::kBFloat16;
  const at::Tensor qc = own ? q.contiguous() : q.to(at::kFloat).contiguous();
  at::Tensor out = at::empty({B, 1, H, D}, qc.options());
  const bool* vp = valid.const_data_ptr<bool>();
  const bool bf16 = k.scalar_type() == at::kBFloat16, q_bf16 = qc.scalar_type() == at::kBFloat16;
  at::parallel_for(0, B * Hkv, 1, [&](int64_t i0, int64_t i1) {
    lines<float> scores(s.g * (L + 1)), qf(s.g * D), of(s.g * D);  // an item's queries and outputs in float32
    for (int64_t it = i0; it < i1; ++it) {
      const int64_t b = it / Hkv, h = it % Hkv, first = (b * H + h * s.g) * D;  // the item's first query element
      const bool* vb = vp + b * valid.stride(0);
      auto item = [&](auto* qp, auto* op) {
        if (bf16) {
          auto kb = reinterpret_cast<const uint16_t*>(k.const_data_ptr<at::BFloat16>()) + b * k.stride(0) + h * k.stride(1);
          auto vv = reinterpret_cast<const uint16_t*>(v.const_data_ptr<at::BFloat16>()) + b * v.stride(0) + h * v.stride(1);
          attend_item<BF16Unpack>(qp, op, kb, vv, vb, s, D, qf.data(), of.data(), scores.data());
        } else {
          const float* kb = k.const_data_ptr<float>() + b * k.stride(0) + h * k.stride(1);
          const float* vv = v.const_data_ptr<float>() + b * v.stride(0) + h * v.stride(1);
          attend_item<F32>(qp, op, kb, vv, vb, s, D, qf.data(), of.data(), scores.data());
        }
      };
      if (q_bf16) item(qc.const_data_ptr<at::BFloat16>() + first, out.data_ptr<at::BFloat16>() + first);
      else item(qc.const_data_ptr<float>() + first, out.data_ptr<float>() + first);
    }
  });
  return own ? out : out.to(q.scalar_type());
}

// -- many queries over heads of 8 (a diffusion UNet's attention at reduced widths).  torch's CPU flash
// attention multiplies blocks through GEMM calls whose inner dimension is the head's 8: it reached ~14
// GFLOP/s on a (16, 8, 256, 8) self-attention.  Here a tile holds eight queries, one per lane: a key's
// scores for the eight are 8 FMAs with the key's values broadcast, and the weighted sum of the values 8
// more, so nothing is reduced across lanes.  Keys come in blocks of kBlock, the softmax online between
// blocks (a running maximum and sum per lane, rescaled once a block).  Heads of 16 measured no faster than
// torch's (a (16, 8, 256, 16) self-attention: 20.8 against 18.8 ms), so the kernel takes 8 only.

constexpr int64_t kBlock = 64;

// Queries q[0..n) (n <= 8, rows q_row apart) over keys and values k, v (Lk rows, k_row and v_row apart):
// out[i] (rows o_row apart) = softmax(q_i k^T * scale) v.
void narrow_tile(const float* q, int64_t q_row, int64_t n, const float* k, int64_t k_row, const float* v,
                 int64_t v_row, int64_t Lk, float scale, float* out, int64_t o_row) {
  constexpr int D = 8;
  alignas(32) float qt[D][8] = {};  // qt[d][i]: query i's value d, scaled (lanes past n stay 0)
  for (int64_t i = 0; i < n; ++i)
    for (int d = 0; d < D; ++d) qt[d][i] = q[i * q_row + d] * scale;
  alignas(32) float s[kBlock][8];
  __m256 o[D];
  for (int d = 0; d < D; ++d) o[d] = _mm256_setzero_ps();
  __m256 m = _mm256_set1_ps(-std::numeric_limits<float>::infinity()), l = _mm256_setzero_ps();
  for (int64_t j0 = 0; j0 < Lk; j0 += kBlock) {
    const int64_t nb = std::min(kBlock, Lk - j0);
    __m256 bm = m;
    int64_t j = 0;
    for (; j + 8 <= nb; j += 8) {  // eight keys at a time: eight independent chains of FMAs
      const float* kj = k + (j0 + j) * k_row;
      __m256 a[8];
      for (int r = 0; r < 8; ++r) a[r] = _mm256_setzero_ps();
      for (int d = 0; d < D; ++d) {
        const __m256 qd = _mm256_load_ps(qt[d]);
        for (int r = 0; r < 8; ++r) a[r] = _mm256_fmadd_ps(qd, _mm256_broadcast_ss(kj + r * k_row + d), a[r]);
      }
      for (int r = 0; r < 8; ++r) {
        _mm256_store_ps(s[j + r], a[r]);
        bm = _mm256_max_ps(bm, a[r]);
      }
    }
    for (; j < nb; ++j) {
      const float* kj = k + (j0 + j) * k_row;
      __m256 a = _mm256_setzero_ps();
      for (int d = 0; d < D; ++d) a = _mm256_fmadd_ps(_mm256_load_ps(qt[d]), _mm256_broadcast_ss(kj + d), a);
      _mm256_store_ps(s[j], a);
      bm = _mm256_max_ps(bm, a);
    }
    const __m256 alpha = exp8_nonpositive(_mm256_sub_ps(m, bm));  // the earlier blocks' weights under the new maximum
    m = bm;
    l = _mm256_mul_ps(l, alpha);
    for (int d = 0; d < D; ++d) o[d] = _mm256_mul_ps(o[d], alpha);
    // the weights, four keys at a time (independent exp chains), then the weighted sum of the values
    for (j = 0; j + 4 <= nb; j += 4) {
      __m256 p[4];
      for (int r = 0; r < 4; ++r) p[r] = exp8_nonpositive(_mm256_sub_ps(_mm256_load_ps(s[j + r]), m));
      for (int r = 0; r < 4; ++r) _mm256_store_ps(s[j + r], p[r]);
      l = _mm256_add_ps(l, _mm256_add_ps(_mm256_add_ps(p[0], p[1]), _mm256_add_ps(p[2], p[3])));
    }
    for (; j < nb; ++j) {
      const __m256 p = exp8_nonpositive(_mm256_sub_ps(_mm256_load_ps(s[j]), m));
      _mm256_store_ps(s[j], p);
      l = _mm256_add_ps(l, p);
    }
    for (j = 0; j < nb; ++j) {
      const __m256 p = _mm256_load_ps(s[j]);
      const float* vj = v + (j0 + j) * v_row;
      for (int d = 0; d < D; ++d) o[d] = _mm256_fmadd_ps(p, _mm256_broadcast_ss(vj + d), o[d]);
    }
  }
  const __m256 r = _mm256_div_ps(_mm256_set1_ps(1.f), l);
  alignas(32) float ot[D][8];
  for (int d = 0; d < D; ++d) _mm256_store_ps(ot[d], _mm256_mul_ps(o[d], r));
  for (int64_t i = 0; i < n; ++i)
    for (int d = 0; d < D; ++d) out[i * o_row + d] = ot[d][i];
}

// softmax(q k^T * scale) v without a mask: q (B, H, Lq, 8), k and v (B, H, Lk, 8), float32, each
// row contiguous (any strides above it: a (B, L, H, D) projection's transpose is read in place).  Returns
// (B, H, Lq, 8) laid out as (B, Lq, H, 8), so that the transpose back to (B, Lq, H * D) is a view.
at::Tensor narrow_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.sizes() == k.sizes(),
              "genaccel_cpu.narrow_attention: q (B, H, Lq, D) and k, v (B, H, Lk, D)");
  const int64_t B = q.size(0), H = q.size(1), Lq = q.size(2), D = q.size(3), Lk = k.size(2);
  TORCH_CHECK(k.size(0) == B && k.size(1) == H && k.size(3) == D && D == 8 && Lk > 0,
              "genaccel_cpu.narrow_attention: shapes q ", q.sizes(), ", k ", k.sizes(), " (head dimension 8)");
  TORCH_CHECK(q.scalar_type() == at::kFloat && k.scalar_type() == at::kFloat && v.scalar_type() == at::kFloat,
              "genaccel_cpu.narrow_attention: float32 q, k and v");
  TORCH_CHECK(q.stride(3) == 1 && k.stride(3) == 1 && v.stride(3) == 1,
              "genaccel_cpu.narrow_attention: rows must be contiguous");
  at::Tensor out = at::empty({B, Lq, H, D}, q.options()).transpose(1, 2);
  const int64_t tiles = (Lq + 7) / 8;
  const float *qp = q.const_data_ptr<float>(), *kp = k.const_data_ptr<float>(), *vp = v.const_data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, B * H * tiles, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t it = i0; it < i1; ++it) {
      const int64_t bh = it / tiles, t = (it % tiles) * 8, b = bh / H, h = bh % H;
      const float* qi = qp + b * q.stride(0) + h * q.stride(1) + t * q.stride(2);
      const float* kb = kp + b * k.stride(0) + h * k.stride(1);
      const float* vb = vp + b * v.stride(0) + h * v.stride(1);
      float* oi = op + b * out.stride(0) + h * out.stride(1) + t * out.stride(2);
      const int64_t n = std::min<int64_t>(8, Lq - t);
      narrow_tile(qi, q.stride(2), n, kb, k.stride(2), vb, v.stride(2), Lk, static_cast<float>(scale), oi, out.stride(2));
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(genaccel_cpu, m) {
  m.def("decode_attention(Tensor q, Tensor k, Tensor v, Tensor valid, Tensor? pos, int window, float scale, "
        "float softcap) -> Tensor");
  m.def("narrow_attention(Tensor q, Tensor k, Tensor v, float scale) -> Tensor");
}

TORCH_LIBRARY_IMPL(genaccel_cpu, CPU, m) {
  m.impl("decode_attention", &decode_attention);
  m.impl("narrow_attention", &narrow_attention);
}

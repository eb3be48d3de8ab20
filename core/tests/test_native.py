"""genaccel's CPU kernels: each product equals the float32 product of the same weights (to float32
rounding), for every weight format, row count, odd sizes and under torch.compile."""

import subprocess
import sys

import pytest
import torch
from genaccel.engine.native import cpu_ops, unavailable
from genaccel.optimizations.int4cpu import dequantize_uint4, pack_uint4, quantize_uint4
from torch import nn

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=f"no native kernels: {unavailable()}")


@pytest.fixture(scope="module")
def ops():
    ops = cpu_ops()
    assert ops is not None, "the kernels did not build (see the warning above)"
    return ops


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 9])
@pytest.mark.parametrize("wdtype,inp", [(torch.float32, 217), (torch.bfloat16, 217), (torch.bfloat16, 2073),
                                        (torch.int8, 217)])
def test_gemv_equals_the_float32_product(ops, rows, wdtype, inp):
    torch.manual_seed(rows)
    out = 37  # inp: a multiple of neither the kernel's blocks, its cache lines nor its steps (8 or 16 weights);
    # bf16 rows of 2048 weights or more take the kernel's other conversion
    w = torch.randn(out, inp)
    w = (w * 40).round().clamp(-127, 127).to(torch.int8) if wdtype == torch.int8 else w.to(wdtype)
    scale = torch.rand(out) + 0.5 if wdtype == torch.int8 else None
    bias = torch.randn(out)
    x = torch.randn(2, rows, inp)
    want = nn.functional.linear(x.double(), w.double()) * (1 if scale is None else scale.double()) + bias.double()
    got = ops.gemv(x, w.contiguous(), scale, bias)
    assert got.shape == (2, rows, out) and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-4)
    got16 = ops.gemv(x.bfloat16(), w.contiguous(), scale, bias.bfloat16())
    want16 = (nn.functional.linear(x.bfloat16().double(), w.double()) * (1 if scale is None else scale.double())
              + bias.bfloat16().double())
    assert got16.dtype == torch.bfloat16
    torch.testing.assert_close(got16.double(), want16.bfloat16().double(), rtol=1e-2, atol=1e-2)


def int4_reference(x, packed, scale_zero, group):
    """The int4 product as the kernel computes it, in float64: x quantized to int8 per group, exact
    integer sums of (q - 8) * xq per group, then the group scales and the zero points against x's float sums."""
    rows, k = x.shape
    blocks = x.reshape(rows, -1, group)
    amax = blocks.abs().amax(-1, keepdim=True)
    xq = torch.where(amax > 0, (blocks * (127.0 / amax)).round(), 0.0).double()
    d = (amax / 127).double()
    ones = torch.ones_like(scale_zero[..., 0])
    q = dequantize_uint4(packed, torch.stack([ones, 0 * ones], -1), group).double().reshape(scale_zero.shape[0], -1, group)  # q - 8
    s, z = scale_zero.double().unbind(-1)
    per_group = torch.einsum("rgi,ogi->rog", xq, q) * d[..., 0][:, None, :]  # (rows, out, groups)
    scaled = (per_group * s).sum(-1)
    xsum = x.double().reshape(rows, -1, group).sum(-1)
    return scaled + xsum @ z.t()


@pytest.mark.parametrize("group", [32, 64, 128, 512])
@pytest.mark.parametrize("rows", [1, 2, 4, 7])
def test_int4_gemv_equals_its_integer_reference_and_the_float_product_closely(ops, group, rows):
    torch.manual_seed(group + rows)
    w = torch.randn(45, 512)
    q, scale_zero = quantize_uint4(w, group)
    packed = pack_uint4(q)
    deq = dequantize_uint4(packed, scale_zero, group)
    assert torch.equal(ops.dequantize_int4(packed, scale_zero, group), deq)
    step = (w.view(45, -1, group).amax(-1) - w.view(45, -1, group).amin(-1)) / 15
    err = (deq - w).abs().view(45, -1, group).amax(-1)
    assert (err <= step * 0.6).all() and (err > 0).any()  # half a step, plus bf16 scales; lossy
    x, bias = torch.randn(rows, 512), torch.randn(45)
    x[0, :32] = 0  # a block of zeros: scale 0
    got = ops.gemv_int4(x, packed, scale_zero, group, bias)
    torch.testing.assert_close(got.double(), int4_reference(x, packed, scale_zero, group) + bias.double(), rtol=1e-5, atol=1e-4)
    # the int8 inputs cost far less than the int4 weights do: the errors' root-mean-squares
    exact = x.double() @ deq.double().t() + bias.double()
    weights_error = (exact - (x.double() @ w.double().t() + bias.double())).pow(2).mean().sqrt()
    inputs_error = (got.double() - exact).pow(2).mean().sqrt()
    assert 0 < inputs_error < 0.3 * weights_error


def test_int4_gemv_stays_exact_where_every_product_is_the_largest(ops):
    w = torch.ones(8, 1024)
    w[:, ::512] = 0  # q = 15 everywhere else; with inputs of 127, a group's 16-bit pair sums would pass 2^15
    q, scale_zero = quantize_uint4(w, 512)
    packed, x = pack_uint4(q), torch.ones(1, 1024)
    got = ops.gemv_int4(x, packed, scale_zero, 512, None)
    torch.testing.assert_close(got.double(), int4_reference(x, packed, scale_zero, 512), rtol=1e-6, atol=1e-4)


ISA_PRODUCTS = """
import sys, torch
from genaccel.engine.native import cpu_ops
from genaccel.optimizations.int4cpu import pack_uint4, quantize_uint4
ops, out = cpu_ops(), {}
torch.manual_seed(0)
for rows in (1, 3, 6):
    for o, k in ((37, 256), (45, 2048)):
        x = torch.randn(rows, k)
        w8 = torch.randint(-128, 128, (o, k), dtype=torch.int8)
        out[f"int8 {rows} {o} {k}"] = ops.gemv_int8(x, ops.pack_int8_rows(w8), torch.rand(o), torch.randn(o))
        for group in (32, 128):
            q, scale_zero = quantize_uint4(torch.randn(o, k), group)
            out[f"int4 {rows} {o} {k} {group}"] = ops.gemv_int4(x, pack_uint4(q), scale_zero, group, torch.randn(o))
        out[f"bf16 {rows} {o} {k}"] = ops.gemv(x.bfloat16(), torch.randn(o, k).bfloat16(), None, None)
out["isa"] = ops.isa()
torch.save(out, sys.argv[1])
"""


def test_avx512_kernels_equal_the_avx2_kernels(ops, tmp_path, monkeypatch):
    """Where the CPU has AVX-512 BF16 and VNNI: the int8 and int4 products are bitwise the AVX2 kernels' (the same
    exact integer sums, then the same float steps); bf16's differ only in the order of the float32 sums."""
    if ops.isa() != "avx512":
        pytest.skip(f"the CPU runs the {ops.isa()} kernels")
    got = {}
    for isa in ("avx2", "avx512"):
        monkeypatch.setenv("GENACCEL_NATIVE_ISA", isa)
        subprocess.run([sys.executable, "-c", ISA_PRODUCTS, str(tmp_path / isa)], check=True)
        got[isa] = torch.load(tmp_path / isa)
    assert got["avx2"].pop("isa") == "avx2" and got["avx512"].pop("isa") == "avx512"
    for key, avx2 in got["avx2"].items():
        if key.startswith("bf16"):
            torch.testing.assert_close(got["avx512"][key], avx2, rtol=1e-2, atol=1e-2)
        else:
            assert torch.equal(got["avx512"][key], avx2), key


def test_kernels_are_opaque_calls_under_compile(ops):
    torch.manual_seed(0)
    w, x = torch.randn(64, 96).bfloat16(), torch.randn(1, 96)
    q, scale_zero = quantize_uint4(torch.randn(64, 64), 32)
    packed = pack_uint4(q)

    def step(x):
        h = ops.gemv(x, w, None, None).relu()
        return ops.gemv_int4(h.contiguous(), packed, scale_zero, 32, None)

    for options in ({}, {"cpp_wrapper": True}):
        torch._dynamo.reset()
        got = torch.compile(step, fullgraph=True, options=options)(x)
        torch.testing.assert_close(got, step(x))


@pytest.mark.parametrize("rows", [1, 3, 6])
@pytest.mark.parametrize("wdtype", [torch.float32, torch.bfloat16, "int8", "int4"])
def test_grouped_gemv_calls_equal_the_separate_calls_bitwise(ops, rows, wdtype):
    """Weights that read the same x (a query/key/value or gate/up group): one call, each output as alone."""
    torch.manual_seed(0)
    outs, k = (90, 30, 42), 4096  # rows split between threads inside int8's groups of four
    xdtype = torch.bfloat16 if wdtype == torch.bfloat16 else torch.float32
    x, biases = torch.randn(rows, k).to(xdtype), [None, torch.randn(30), None]
    if wdtype == "int4":
        quantized = [quantize_uint4(torch.randn(o, k), 128) for o in outs]
        packed, scale_zero = [pack_uint4(q) for q, _ in quantized], [sz for _, sz in quantized]
        alone = [ops.gemv_int4(x, p, sz, 128, b) for p, sz, b in zip(packed, scale_zero, biases)]
        grouped = ops.gemv_int4_many(x, packed, scale_zero, 128, biases).split(outs, -1)
    elif wdtype == "int8":
        packed = [ops.pack_int8_rows(torch.randint(-128, 128, (o, k), dtype=torch.int8)) for o in outs]
        scales = [torch.rand(o) * 0.01 for o in outs]
        alone = [ops.gemv_int8(x, p, s, b) for p, s, b in zip(packed, scales, biases)]
        grouped = ops.gemv_int8_many(x, packed, scales, biases).split(outs, -1)
    else:
        ws = [torch.randn(o, k).to(wdtype) for o in outs]
        scales = [None, None, torch.rand(42)]
        alone = [ops.gemv(x, w, s, b) for w, s, b in zip(ws, scales, biases)]
        grouped = ops.gemv_many(x, ws, scales, biases).split(outs, -1)
    assert len(grouped) == 3 and all(torch.equal(a, g) for a, g in zip(alone, grouped))


@pytest.mark.parametrize("cpp_wrapper,rows", [(False, 1), (True, 1), (True, 5)])
def test_compiled_gemv_calls_on_one_input_become_one_grouped_call(ops, cpp_wrapper, rows):
    from genaccel.engine import gemv_groups

    torch.manual_seed(0)
    ws, other, bias = [torch.randn(o, 64).bfloat16() for o in (64, 32, 32, 16, 8)], torch.randn(16, 64).bfloat16(), torch.randn(32)
    packed, scale = ops.pack_int8_rows(torch.randint(-128, 128, (48, 64), dtype=torch.int8)), torch.rand(48) * 0.01
    int4 = [(pack_uint4(q), sz, group) for group in (32, 32, 64) for q, sz in [quantize_uint4(torch.randn(24, 64), group)]]

    def step(x):
        h = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
        q, k, v = ops.gemv(h, ws[0], None, None), ops.gemv(h, ws[1], None, bias), ops.gemv(h, ws[2], None, None)
        alone = ops.gemv(x.float(), other.float(), None, None)  # another input: left alone
        u, g = ops.gemv_int8(x, packed, scale, None), ops.gemv_int8(x, packed, scale, bias.repeat(2)[:48])
        a, b = ops.gemv(q, ws[3], None, None), ops.gemv(q, ws[4], None, None)  # on a grouped call's output
        i1, i2, i3 = (ops.gemv_int4(h, p, sz, group, None) for p, sz, group in int4)  # the third's groups differ: apart
        h2 = h * 2
        first = ops.gemv(h2, ws[3], None, None)  # its output the next one's bias (itself or a copy): apart
        second = ops.gemv(h2, ws[3], None, first if rows == 1 else first.reshape(-1)[:16].contiguous())
        return q + 1, k * v, alone, u - g, a, b, second, i1 - i2, i3

    seen = []

    class Counted(gemv_groups.GroupGemvs):
        def __call__(self, graph):
            super().__call__(graph)
            seen.append(sorted(str(n.target) for n in graph.nodes if "genaccel_cpu" in str(n.target)))

    x = torch.randn(rows, 1, 64).bfloat16()  # five rows: the slices that feed the last group are strided
    want = torch.compile(step, fullgraph=True, options={"cpp_wrapper": cpp_wrapper, "fx_graph_cache": False})(x)
    torch._dynamo.reset()
    got = torch.compile(step, fullgraph=True, options={"cpp_wrapper": cpp_wrapper, "fx_graph_cache": False,
                                                       "post_grad_custom_post_pass": Counted()})(x)
    torch._dynamo.reset()
    assert seen == [["genaccel_cpu.gemv.default"] * 3 + ["genaccel_cpu.gemv_int4.default", "genaccel_cpu.gemv_int4_many.default",
                     "genaccel_cpu.gemv_int8_many.default"] + ["genaccel_cpu.gemv_many.default"] * 2]
    assert all(torch.equal(a, b) for a, b in zip(got, want))


def test_bad_inputs_are_refused_with_what_was_wrong(ops):
    with pytest.raises(RuntimeError, match="features"):
        ops.gemv(torch.randn(1, 8), torch.randn(4, 9), None, None)
    with pytest.raises(RuntimeError, match="group size"):
        ops.gemv_int4(torch.randn(1, 64), torch.zeros(4, 32, dtype=torch.uint8), torch.zeros(4, 1, 2, dtype=torch.bfloat16), 48, None)
    with pytest.raises(RuntimeError, match="rounded up to 4"):  # 5 rows are packed as 8
        ops.gemv_int4(torch.randn(1, 64), torch.zeros(5, 32, dtype=torch.uint8), torch.zeros(5, 1, 2, dtype=torch.bfloat16), 64, None)


@pytest.mark.parametrize("out,k,rows", [(37, 64, 1), (64, 96, 3), (130, 256, 5), (9, 32, 4)])
def test_gemv_int8_is_the_exact_integer_product_of_inputs_quantized_per_32(ops, out, k, rows):
    """int8 weights repacked four rows to a stream; inputs quantized to int8 per 32 features (q8_0's
    inputs): equal to a float64 reference of the same math, and within 1% of the float product."""
    torch.manual_seed(0)
    w = torch.randint(-128, 128, (out, k), dtype=torch.int8)
    scale, bias, x = torch.rand(out) * 0.01, torch.randn(out), torch.randn(rows, k)
    y = ops.gemv_int8(x, ops.pack_int8_rows(w), scale, bias)
    xb = x.double().view(rows, k // 32, 32)
    d = xb.abs().amax(-1, keepdim=True) / 127
    q = torch.round(xb / d)
    dots = torch.einsum("rbi,obi->rob", q, w.double().view(out, k // 32, 32))
    want = (dots * d.squeeze(-1)[:, None, :]).sum(-1) * scale.double() + bias.double()
    torch.testing.assert_close(y.double(), want, rtol=1e-5, atol=1e-5)
    full = x.double() @ w.double().T * scale.double() + bias.double()
    assert (y.double() - full).abs().max() < 0.01 * full.abs().max()


@pytest.mark.parametrize("group", [32, 64, 128])
def test_int7_from_int4_rounds_each_weight_to_64ths_of_its_rows_largest(ops, group):
    torch.manual_seed(group)
    w = torch.randn(19, 256)
    w[3] = 0  # a row of zeros: the smallest bf16 scale
    q, scale_zero = quantize_uint4(w, group)
    scale_zero[5] = 0  # scales and zero points of 0: the row's scale is 0
    packed = pack_uint4(q)
    deq = dequantize_uint4(packed, scale_zero, group).double()
    w7, scale = ops.int7_from_int4(packed, scale_zero, group)
    assert w7.dtype == torch.int8 and w7.shape == (19, 256) and w7.abs().max() == 64
    s, z = scale_zero.double().unbind(-1)
    amax = torch.maximum((z - 8 * s).abs(), (z + 7 * s).abs()).amax(-1)  # each group's extremes: q = 0 and q = 15
    torch.testing.assert_close(scale.double(), amax / 64)
    exact = torch.where(amax[:, None] > 0, deq * 64 / amax[:, None], 0.0)
    assert (w7.double() - exact).abs().max() <= 0.5 + 1e-4 and not w7[3].any()
    assert scale[5] == 0 and not w7[5].any()


def test_int7_linear_is_the_integer_product_of_rows_quantized_to_uint8(ops):
    from genaccel.optimizations.int4cpu import int7_linear, integer_gemm

    if not integer_gemm():
        pytest.skip("oneDNN's quantized linear is not available")
    torch.manual_seed(0)
    w = torch.randn(45, 512)
    q, scale_zero = quantize_uint4(w, 64)
    packed = pack_uint4(q)
    w7, scale = ops.int7_from_int4(packed, scale_zero, 64)
    x, bias = torch.randn(3, 40, 512), torch.randn(45)
    x[0, 0] = 0  # a row of zeros
    got = int7_linear(x, w7, scale, bias)
    assert got.shape == (3, 40, 45) and got.dtype == torch.float32
    flat = x.double().reshape(-1, 512)
    step = flat.abs().amax(-1, keepdim=True).clamp(min=torch.finfo(torch.float32).tiny) / 127
    xq = torch.round(flat / step)
    want = (xq @ w7.double().T) * step * scale.double() + bias.double()
    torch.testing.assert_close(got.double().reshape(-1, 45), want, rtol=1e-5, atol=1e-4)
    assert not got[0, 0].sub(bias).any()
    # the rounding of the input and of the weight's seventh bit cost far less than the int4 weights do
    deq = dequantize_uint4(packed, scale_zero, 64).double()
    exact = flat @ deq.T + bias.double()
    weights_error = (exact - (flat @ w.double().T + bias.double())).pow(2).mean().sqrt()
    ours_error = (got.double().reshape(-1, 45) - exact).pow(2).mean().sqrt()
    assert 0 < ours_error < 0.35 * weights_error
    assert int7_linear(x.bfloat16(), w7, scale, bias.bfloat16()).dtype == torch.bfloat16


def test_int4_layers_take_the_gemv_for_few_rows_and_the_integer_gemm_for_many(ops):
    from genaccel.llm.gemv import RowReduceLinear
    from genaccel.optimizations.int4cpu import int7_linear, integer_gemm, quantize_int4_cpu

    if not integer_gemm():
        pytest.skip("oneDNN's quantized linear is not available")
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(128, 24))
    assert quantize_int4_cpu(net, {"0": net[0]}, 64) == {}
    layer = net[0]
    with torch.no_grad():
        for rows in (3, RowReduceLinear.MAX_ROWS + 1):
            x = torch.randn(rows, 128)
            got = layer(x)
            if rows <= RowReduceLinear.MAX_ROWS:
                want = ops.gemv_int4(x, layer.weight, layer.scale_zero, 64, layer.bias)
            else:
                want = int7_linear(x, *ops.int7_from_int4(layer.weight, layer.scale_zero, 64), layer.bias)
            assert torch.equal(got, want)


def _attention_reference(q, k, v, valid, pos, window, scale, softcap):
    """Masked softmax attention in float64: key j of row b is seen when valid, at or before ``pos`` and within
    ``window`` (0: none); query heads share KV heads in groups."""
    g, n = q.shape[1] // k.shape[1], k.shape[2]
    keys, values = k.double().repeat_interleave(g, 1), v.double().repeat_interleave(g, 1)
    scores = q.double() @ keys.transpose(-1, -2) * scale
    if softcap:
        scores = torch.tanh(scores / softcap) * softcap
    j = torch.arange(n)
    seen = valid[:, :n] & (j <= pos)[None] & ((j > pos - window)[None] if window else True)
    return (scores.masked_fill(~seen[:, None, None, :], float("-inf")).softmax(-1) @ values).transpose(1, 2)


@pytest.mark.parametrize("kv_dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("heads,kv_heads,dim,n,window,softcap", [
    (4, 2, 64, 37, 0, 0.0),      # grouped query heads; a length that is no multiple of the kernel's 4 or 8
    (2, 2, 16, 9, 0, 0.0),
    (8, 2, 128, 100, 16, 30.0),  # a sliding window and soft-capped scores (Gemma 2)
    (8, 2, 64, 45, 20, 0.0),     # four heads to a KV head over a window: the masks and maxima eight keys at a time
])
def test_decode_attention_equals_masked_softmax_attention(ops, kv_dtype, heads, kv_heads, dim, n, window, softcap):
    torch.manual_seed(n)
    cache = 2 * n  # the cache is longer than the positions read: k and v are views of its first n
    q = torch.randn(2, heads, 1, dim)
    k, v = (torch.randn(2, kv_heads, cache, dim).to(kv_dtype)[:, :, :n] for _ in range(2))
    valid = torch.ones(2, cache, dtype=torch.bool)
    valid[1, :5] = False  # a left-padded row
    pos = torch.tensor(n - 2)  # the last key is past the query: masked
    got = ops.decode_attention(q, k, v, valid, pos, window, dim ** -0.5, softcap)
    want = _attention_reference(q, k, v, valid, n - 2, window, dim ** -0.5, softcap)
    assert got.shape == (2, 1, heads, dim) and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)
    for narrow in (torch.bfloat16, torch.float16):  # bfloat16 queries read in place, float16 ones converted around
        got = ops.decode_attention(q.to(narrow), k, v, valid, pos, window, dim ** -0.5, softcap)
        want = _attention_reference(q.to(narrow).float(), k, v, valid, n - 2, window, dim ** -0.5, softcap)
        assert got.dtype == narrow
        torch.testing.assert_close(got, want.to(narrow))  # within one rounding of the narrow dtype


def test_compiled_steps_take_the_native_attention_where_it_has_a_kernel(ops):
    from genaccel.llm.flex_decode import native_decode_attention

    assert native_decode_attention(64, torch.float32) and native_decode_attention(128, torch.bfloat16)
    assert not native_decode_attention(64, torch.float16)  # a float16 cache: flex attention
    assert not native_decode_attention(24, torch.float32)


def test_decode_attention_refuses_a_head_dimension_it_has_no_kernel_for(ops):
    q, k = torch.randn(1, 2, 1, 24), torch.randn(1, 2, 5, 24)
    with pytest.raises(RuntimeError, match="head dimension 16, 32, 64, 128 or 256, not 24"):
        ops.decode_attention(q, k, k, torch.ones(1, 5, dtype=torch.bool), None, 0, 0.2, 0.0)


@pytest.mark.parametrize("batch,heads,lq,lk,spread", [
    (2, 3, 19, 77, 1.0),   # tiles of eight queries and blocks of keys with remainders
    (1, 2, 8, 200, 30.0),  # several key blocks whose maxima differ widely: the online rescaling
    (5, 1, 3, 1, 1.0),     # one key
])
def test_narrow_attention_equals_softmax_attention(ops, batch, heads, lq, lk, spread):
    torch.manual_seed(lk)
    # (B, L, H, 8) projections seen as (B, H, L, 8), as diffusers' processors make them: read in place
    q = torch.randn(batch, lq, heads, 8).transpose(1, 2) * spread
    k = torch.randn(batch, lk, heads, 8).transpose(1, 2)
    v = torch.randn(batch, lk, heads, 8).transpose(1, 2)
    k[..., lk // 2:, :] *= 3  # later blocks with larger scores
    scale = 8 ** -0.5
    weights = ((q.double() @ k.double().transpose(-1, -2)) * scale).softmax(-1)
    got = ops.narrow_attention(q, k, v, scale)
    assert got.shape == (batch, heads, lq, 8) and got.transpose(1, 2).is_contiguous()  # (B, Lq, H, 8) in memory
    torch.testing.assert_close(got.double(), weights @ v.double(), rtol=1e-5, atol=1e-5)
    compiled = torch.compile(lambda q, k, v: ops.narrow_attention(q, k, v, scale).transpose(1, 2).reshape(batch, lq, -1),
                             fullgraph=True)
    torch.testing.assert_close(compiled(q, k, v), got.transpose(1, 2).reshape(batch, lq, -1))


def test_narrow_attention_refuses_what_it_has_no_kernel_for(ops):
    q = torch.randn(1, 2, 4, 16)
    with pytest.raises(RuntimeError, match=r"head dimension 8\)"):
        ops.narrow_attention(q, q, q, 0.25)
    q = torch.randn(1, 2, 4, 8)
    with pytest.raises(RuntimeError, match="float32"):
        ops.narrow_attention(q.bfloat16(), q.bfloat16(), q.bfloat16(), 0.25)

"""genaccel's own CPU kernels, the ``genaccel_cpu`` ops: few-row products for decode steps that read
each weight once, in float32, bfloat16, int8 and group-wise int4, and the int4 weights as int8 for
oneDNN's u8 x s8 GEMM (``csrc/cpu_gemv.cpp``), and one-token
attention over a float32 or bfloat16 KV cache and many-query attention over heads of 8
(``csrc/cpu_attention.cpp``).

They are compiled on first use with the machine's C++ compiler (torch's extension builder, about a
minute on two cores) into ``cache_dir()/native/<key>``, the key naming the source, torch's version
and the flags, so a second process loads the library at once and a change of any rebuilds it.
They need an x86 CPU with AVX2 and FMA; elsewhere, or where the build fails (the reason is warned
once), :func:`cpu_ops` is None and callers keep their portable paths.  ``GENACCEL_NATIVE=0`` turns
them off.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
from pathlib import Path

import torch

from ..errors import first_line
from ..files import cache_dir, warn

CSRC = Path(__file__).parent / "csrc"
SOURCES = (CSRC / "cpu_gemv.cpp", CSRC / "cpu_gemv_avx512.cpp", CSRC / "cpu_attention.cpp")
HEADERS = (CSRC / "simd.h", CSRC / "simd_common.h", CSRC / "cpu_gemv_avx512.h")
FLAGS = ["-O3", "-mavx2", "-mfma", "-fopenmp"]


def unavailable() -> str | None:
    """Why the kernels cannot run here (None: they can, once built)."""
    if os.environ.get("GENACCEL_NATIVE", "1") == "0":
        return "GENACCEL_NATIVE=0"
    capability = torch.backends.cpu.get_cpu_capability()
    if capability not in ("AVX2", "AVX512"):
        return f"the CPU has no AVX2 (torch reports {capability})"
    return None


@functools.cache
def cpu_ops():
    """``torch.ops.genaccel_cpu`` (``gemv``, ``gemv_int8``, ``gemv_int4``, their ``_many`` forms, ``decode_attention`` ...), built or loaded
    from the cache; None where :func:`unavailable` or the build failed."""
    if unavailable():
        return None
    from torch.utils import cpp_extension

    if shutil.which("ninja") is None:  # the ninja wheel's binary, where the environment's scripts are not on PATH
        try:
            import ninja

            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
        except ImportError:
            pass

    text = b"".join(p.read_bytes() for p in (*SOURCES, *HEADERS))
    key = hashlib.sha256(text + f"{torch.__version__} {FLAGS}".encode()).hexdigest()[:16]
    where = cache_dir() / "native" / key
    where.mkdir(parents=True, exist_ok=True)
    try:
        cpp_extension.load(name=f"genaccel_cpu_{key}", sources=[str(p) for p in SOURCES], extra_cflags=FLAGS,
                           extra_ldflags=["-fopenmp"], build_directory=str(where), is_python_module=False,
                           verbose=False)
    except Exception as e:  # noqa: BLE001 - no compiler, or a failed build: the portable paths stay
        warn(f"genaccel's CPU kernels could not be built in {where} ({type(e).__name__}: {first_line(e)}); "
             "decode steps use the portable paths")
        return None
    _register_fakes()
    return torch.ops.genaccel_cpu


def _register_fakes() -> None:
    """Output shapes for torch.compile's tracing (the ops are opaque calls in the compiled graph)."""

    def gemv(x, w, scale=None, bias=None):
        return x.new_empty(*x.shape[:-1], w.shape[0])

    def gemv_many(x, w, scale, bias):
        return x.new_empty(*x.shape[:-1], sum(one.shape[0] for one in w))

    def gemv_int8_many(x, packed, scale, bias):
        return x.new_empty(*x.shape[:-1], sum(one.shape[0] for one in scale))

    def gemv_int4(x, packed, scale_zero, group, bias=None):
        return x.new_empty(*x.shape[:-1], scale_zero.shape[0])

    def gemv_int4_many(x, packed, scale_zero, group, bias):
        return x.new_empty(*x.shape[:-1], sum(one.shape[0] for one in scale_zero))

    def dequantize_int4(packed, scale_zero, group):
        return packed.new_empty(scale_zero.shape[0], packed.shape[1] * 2, dtype=torch.float32)

    def gemv_int8(x, packed, scale, bias=None):
        return x.new_empty(*x.shape[:-1], scale.shape[0])

    def pack_int8_rows(w):
        return w.new_empty(-(-w.shape[0] // 4), 4 * w.shape[1])

    def int7_from_int4(packed, scale_zero, group):
        out = scale_zero.shape[0]
        return packed.new_empty(out, packed.shape[1] * 2, dtype=torch.int8), packed.new_empty(out, dtype=torch.float32)

    def decode_attention(q, k, v, valid, pos, window, scale, softcap):
        return q.new_empty(q.shape[0], 1, q.shape[1], q.shape[3])

    def narrow_attention(q, k, v, scale):
        return q.new_empty(q.shape[0], q.shape[2], q.shape[1], q.shape[3]).transpose(1, 2)  # (B, Lq, H, D) in memory

    for name, fn in (("gemv", gemv), ("gemv_many", gemv_many), ("gemv_int8_many", gemv_int8_many), ("gemv_int4", gemv_int4),
                     ("gemv_int4_many", gemv_int4_many), ("dequantize_int4", dequantize_int4),
                     ("gemv_int8", gemv_int8), ("pack_int8_rows", pack_int8_rows),
                     ("int7_from_int4", int7_from_int4),
                     ("decode_attention", decode_attention), ("narrow_attention", narrow_attention)):
        torch.library.register_fake(f"genaccel_cpu::{name}", fn)

"""The study's characterization of one diffusion workload's inference (``genaccel characterize-study``):
its attention profile (sequence lengths, seconds and FLOPs per kind), the seconds of every convolution and
of each operator category (Fig. 7), with eager attention and with SDPA, over image sizes (Fig. 10) and frame
counts (Fig. 14), and a denoising step's peak memory over image sizes beside the similarity-matrix model."""

from __future__ import annotations

import sys
import time

import attrs

from ..diffusion.attention import attention_profile
from .case import release_memory
from .config import RunConfig
from .memory import memory_sweep
from .operators import OperatorClock, normalized_bars
from .prepare import prepare
from .resolve import resolve


def profile_once(registry, base: RunConfig, steps: int, *, attention: str, options: dict | None = None) -> dict:
    """One warm inference's attention profile over ``steps`` denoising steps, plus the seconds of every
    convolution and of each operator category (:class:`genaccel.run.operators.OperatorClock`), of the workload
    ``base`` names (its model, device, dtype and seed)."""
    config = attrs.evolve(base, samples=1, optimizations=("sdpa",) if attention == "sdpa" else (),
                          options=options or {})
    inst = prepare(resolve(registry, config)).instance
    attention_profile(inst, steps=1)  # warm-up
    clock = OperatorClock(inst.module, inst.device)
    try:
        prof = attention_profile(inst, steps=steps)
    finally:
        clock.remove()
    summary = prof["summary"]
    attn_s = sum(k["seconds"] for k in summary["kinds"].values())
    result = {
        "attention": attention, "options": options or {},
        "inference_s": summary["inference_s"], "attention_s": attn_s, "conv_s": clock.conv_s,
        "attention_share": attn_s / summary["inference_s"], "conv_share": clock.conv_s / summary["inference_s"],
        "operators": clock.breakdown(summary["inference_s"]), "summary": summary,
        "sequence_profile": [{k: c[k] for k in ("step", "module", "kind", "query_len", "key_len")}
                             for c in prof["calls"] if c["module"].startswith("unet.")],
    }
    del inst
    release_memory()
    return result


_SHARES = ("inference_s", "attention_s", "conv_s", "attention_share", "conv_share")


def characterize_workload(registry, base: RunConfig, steps: int, *, image_sizes=(), frame_counts=()) -> dict:
    """A workload's characterization: the attention profile with eager attention and SDPA, and the image-size
    and frame-count sweeps asked for."""
    t0 = time.perf_counter()
    w = base.workload
    print(f"{w}: attention profile (eager, sdpa)", file=sys.stderr, flush=True)
    eager = profile_once(registry, base, steps, attention="eager")
    sdpa = profile_once(registry, base, steps, attention="sdpa")
    s = eager["summary"]
    entry = {"workload": w, "preset": base.preset, "steps": steps, "attention": {k: s[k] for k in s if k != "profile"},
             "eager": eager, "sdpa": sdpa, "fig7": normalized_bars(eager, sdpa), "image_sweep": [], "frame_sweep": []}
    for size in image_sizes:
        print(f"{w}: image size {size}", file=sys.stderr, flush=True)
        pair = [profile_once(registry, base, steps, attention=a, options={"image_size": size}) for a in ("eager", "sdpa")]
        entry["image_sweep"].append({"image_size": size, **{p["attention"]: {k: p[k] for k in _SHARES} for p in pair}})
    if "temporal" in s["kinds"]:
        for frames in frame_counts:
            print(f"{w}: {frames} frames", file=sys.stderr, flush=True)
            k = profile_once(registry, base, steps, attention="sdpa", options={"frames": frames})["summary"]["kinds"]
            entry["frame_sweep"].append({"frames": frames, "temporal": k["temporal"], "spatial": k["spatial"]})
    entry["memory"] = memory_sweep(registry, base, image_sizes)
    entry["seconds"] = time.perf_counter() - t0
    return entry

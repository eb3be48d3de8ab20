"""The study's characterization of one diffusion workload's inference (``genaccel characterize-study``):
its attention profile (sequence lengths, seconds and FLOPs per kind) and the seconds of every
convolution, with eager attention and with SDPA, over image sizes (Fig. 10) and frame counts (Fig. 14)."""

from __future__ import annotations

import sys
import time

import attrs
import torch

from ..diffusion.attention import attention_profile
from ..engine.clock import synced_now
from .case import release_memory
from .config import RunConfig
from .prepare import prepare
from .resolve import resolve


def profile_once(registry, base: RunConfig, steps: int, *, attention: str, options: dict | None = None) -> dict:
    """One warm inference's attention profile over ``steps`` denoising steps, plus the seconds of every
    convolution, of the workload ``base`` names (its model, device, dtype and seed)."""
    config = attrs.evolve(base, samples=1, optimizations=("sdpa",) if attention == "sdpa" else (),
                          options=options or {})
    inst = prepare(resolve(registry, config)).instance
    attention_profile(inst, steps=1)  # warm-up
    conv, device = {"seconds": 0.0, "calls": 0}, inst.device
    starts = {}
    handles = []
    kinds = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
    for name, m in inst.module.named_modules():
        if isinstance(m, kinds):
            def pre(module, a, name=name):
                starts[name] = synced_now(device)

            def post(module, a, out, name=name):
                conv["seconds"] += synced_now(device) - starts.pop(name)
                conv["calls"] += 1

            handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    try:
        prof = attention_profile(inst, steps=steps)
    finally:
        for h in handles:
            h.remove()
    summary = prof["summary"]
    attn_s = sum(k["seconds"] for k in summary["kinds"].values())
    result = {
        "attention": attention, "options": options or {},
        "inference_s": summary["inference_s"], "attention_s": attn_s, "conv_s": conv["seconds"],
        "attention_share": attn_s / summary["inference_s"], "conv_share": conv["seconds"] / summary["inference_s"],
        "summary": summary,
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
             "eager": eager, "sdpa": sdpa, "image_sweep": [], "frame_sweep": []}
    for size in image_sizes:
        print(f"{w}: image size {size}", file=sys.stderr, flush=True)
        pair = [profile_once(registry, base, steps, attention=a, options={"image_size": size}) for a in ("eager", "sdpa")]
        entry["image_sweep"].append({"image_size": size, **{p["attention"]: {k: p[k] for k in _SHARES} for p in pair}})
    if "temporal" in s["kinds"]:
        for frames in frame_counts:
            print(f"{w}: {frames} frames", file=sys.stderr, flush=True)
            k = profile_once(registry, base, steps, attention="sdpa", options={"frames": frames})["summary"]["kinds"]
            entry["frame_sweep"].append({"frames": frames, "temporal": k["temporal"], "spatial": k["spatial"]})
    entry["seconds"] = time.perf_counter() - t0
    return entry

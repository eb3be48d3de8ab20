"""The study's characterization of a latent-diffusion inference: the attention sequence length at
every attention call, and the time and FLOPs of each kind of attention."""

from __future__ import annotations

import bisect
import time

from ..engine.attention import record_attention
from .loop import denoise, settings
from .prompts import PROMPTS


class _Steps:
    """A Denoiser whose forwards mark where each denoising step's attention calls begin in ``calls``."""

    def __init__(self, inner, calls: list):
        self._inner, self._calls, self.starts = inner, calls, []

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def predict_noise(self, *args):
        self.starts.append(len(self._calls))
        return self._inner.predict_noise(*args)

    def step_of(self, index: int) -> int:
        """The denoising step (from 0) of the call at ``index``."""
        return bisect.bisect_right(self.starts, index) - 1


def attention_profile(instance, prompt: str = PROMPTS[0], *, steps: int = 2, guidance_scale: float | None = None,
                      scheduler: str | None = None) -> dict:
    """The study's attention characterization of one inference of a :class:`LatentDiffusion` workload.

    The attention-call record (:func:`genaccel.engine.attention.record_attention`) over the workload's
    attention sites (its UNet's) gives, per call, the module's name, its kind (``spatial`` self-attention
    over a frame's positions, ``temporal`` over the frames in a UNet3D's temporal transformers, ``cross``
    to the text), its query and key lengths, its FLOPs (``4·B·Lq·Lk·d`` for QKᵀ and AV) and its seconds;
    each call is given its denoising step here.  Returns the calls and a summary: the per-step profile of
    query lengths over the UNet's blocks (U-shaped: down, mid, up), the max/min sequence length
    ratio, and the seconds and FLOPs of each kind.
    """
    options = {"num_inference_steps": steps, "guidance_scale": guidance_scale, "scheduler": scheduler}
    s = settings({k: v for k, v in options.items() if v is not None}, instance.denoise_defaults)
    sample = instance.prompt_sample(prompt)
    with record_attention(instance.attention_sites(), instance.device) as calls:
        steps_of = _Steps(instance, calls)
        t0 = time.perf_counter()
        denoise(steps_of, [sample], s, sequential=False, device=instance.device)  # a forward a step
        total = time.perf_counter() - t0
    for c in calls:
        c["step"] = steps_of.step_of(c["index"])
    return {"calls": calls, "summary": _summary(calls, total)}


def _summary(calls: list[dict], total: float) -> dict:
    """The per-step profile of the first step's UNet calls, the max/min sequence length, each kind's figures."""
    unet_calls = [c for c in calls if c["module"].startswith("unet.") and c["step"] == 0]
    self_lens = [c["query_len"] for c in calls if c["kind"] == "spatial"]
    kinds = {}
    for c in calls:
        k = kinds.setdefault(c["kind"], {"calls": 0, "seconds": 0.0, "flops": 0})
        k["calls"] += 1
        k["seconds"] += c["seconds"]
        k["flops"] += c["flops"]
    summary = {
        "profile": [(c["module"], c["kind"], c["query_len"]) for c in unet_calls],
        "max_seq_len": max(self_lens),
        "min_seq_len": min(self_lens),
        "seq_len_ratio": max(self_lens) / min(self_lens),
        "kinds": kinds,
        "inference_s": total,
    }
    if "temporal" in kinds and "spatial" in kinds:
        t, sp = kinds["temporal"], kinds["spatial"]
        summary["temporal_over_spatial_seconds"] = t["seconds"] / sp["seconds"]
        summary["temporal_over_spatial_flops"] = t["flops"] / sp["flops"]
    return summary

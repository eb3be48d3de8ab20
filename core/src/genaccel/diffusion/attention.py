"""The study's characterization of a latent-diffusion inference: the attention sequence length at
every attention call, and the time and FLOPs of each kind of attention."""

from __future__ import annotations

import time

from diffusers.models.attention_processor import Attention

from ..engine.clock import synced_now
from .loop import denoise, settings
from .prompts import PROMPTS


class _Recorder:
    """Forward hooks on every ``diffusers`` ``Attention`` module of a workload's UNet and VAE: per call,
    the denoising step, module, kind, query and key lengths, FLOPs and seconds."""

    def __init__(self, instance):
        self.device, self.calls, self.step, self._starts = instance.device, [], -1, {}
        self._temporal = [f"unet.{n}." for n, m in instance.unet.named_modules() if "Temporal" in type(m).__name__]
        self._handles = []
        for part_name, part in (("unet", instance.unet), ("vae", instance.vae)):
            for name, module in part.named_modules():
                if isinstance(module, Attention):
                    full = f"{part_name}.{name}"
                    self._handles.append(module.register_forward_pre_hook(self._pre(full), with_kwargs=True))
                    self._handles.append(module.register_forward_hook(self._post(full), with_kwargs=True))

    def kind_of(self, name: str, module) -> str:
        if name.startswith("vae."):
            return "vae"
        if module.is_cross_attention:
            return "cross"
        return "temporal" if any(name.startswith(t) for t in self._temporal) else "spatial"

    def _pre(self, name):
        def hook(module, args, kwargs):
            self._starts[name] = synced_now(self.device)
        return hook

    def _post(self, name):
        def hook(module, args, kwargs, output):
            seconds = synced_now(self.device) - self._starts.pop(name)
            hidden = args[0] if args else kwargs["hidden_states"]
            context = kwargs.get("encoder_hidden_states")
            if hidden.dim() == 4:  # (B, C, H, W) inside the VAE's mid block
                b, _, h, w = hidden.shape
                lq = h * w
            else:
                b, lq = hidden.shape[:2]
            lk = context.shape[1] if context is not None else lq
            self.calls.append({"step": self.step, "module": name, "kind": self.kind_of(name, module), "query_len": lq,
                               "key_len": lk, "batch": b, "flops": 4 * b * lq * lk * module.inner_dim,
                               "seconds": seconds})
        return hook

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


class _Counting:
    """A Denoiser whose forwards number the recorder's steps (``vae`` for the decode)."""

    def __init__(self, inner, recorder: _Recorder):
        self._inner, self._recorder = inner, recorder

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def predict_noise(self, *args):
        self._recorder.step += 1
        return self._inner.predict_noise(*args)

    def decode_latents(self, latents):
        self._recorder.step = "vae"
        return self._inner.decode_latents(latents)


def attention_profile(instance, prompt: str = PROMPTS[0], *, steps: int = 2, guidance_scale: float | None = None,
                      scheduler: str | None = None) -> dict:
    """The study's attention characterization of one inference of a :class:`LatentDiffusion` workload.

    Forward hooks on every ``diffusers`` ``Attention`` module record, per call, the denoising step
    (``vae`` for the decode), the module's name, its kind (``spatial`` self-attention over a frame's
    positions, ``temporal`` over the frames in a UNet3D's temporal transformers, ``cross`` to the
    text, ``vae``), its query and key lengths, its FLOPs (``4·B·Lq·Lk·d``
    for QKᵀ and AV) and its seconds.  Returns the calls and a summary: the per-step profile of
    query lengths over the UNet's blocks (U-shaped: down, mid, up), the max/min sequence length
    ratio, and the seconds and FLOPs of each kind.
    """
    options = {"num_inference_steps": steps, "guidance_scale": guidance_scale, "scheduler": scheduler}
    s = settings({k: v for k, v in options.items() if v is not None}, instance.denoise_defaults)
    sample = instance.prompt_sample(prompt)
    recorder = _Recorder(instance)
    try:
        t0 = time.perf_counter()
        denoise(_Counting(instance, recorder), [sample], s, sequential=False, device=instance.device)  # a forward a step
        total = time.perf_counter() - t0
    finally:
        recorder.remove()
    return {"calls": recorder.calls, "summary": _summary(recorder.calls, total)}


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

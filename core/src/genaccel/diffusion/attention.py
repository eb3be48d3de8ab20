"""The study's characterization of a latent-diffusion inference: the attention sequence length at
every attention call, and the time and FLOPs of each kind of attention."""

from __future__ import annotations

import time

from ..engine.clock import synced_now
from .loop import denoise, settings
from .prompts import PROMPTS

# --- characterization: attention over one inference ----------------------------------------------


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
    from diffusers.models.attention_processor import Attention

    calls, state = [], {"step": -1}
    starts = {}
    temporal = [f"unet.{n}." for n, m in instance.unet.named_modules() if "Temporal" in type(m).__name__]

    def kind_of(name: str, module) -> str:
        if name.startswith("vae."):
            return "vae"
        if module.is_cross_attention:
            return "cross"
        return "temporal" if any(name.startswith(t) for t in temporal) else "spatial"

    def pre(name):
        def hook(module, args, kwargs):
            starts[name] = synced_now(instance.device)
        return hook

    def post(name):
        def hook(module, args, kwargs, output):
            seconds = synced_now(instance.device) - starts.pop(name)
            hidden = args[0] if args else kwargs["hidden_states"]
            context = kwargs.get("encoder_hidden_states")
            if hidden.dim() == 4:  # (B, C, H, W) inside the VAE's mid block
                b, _, h, w = hidden.shape
                lq = h * w
            else:
                b, lq = hidden.shape[:2]
            lk = context.shape[1] if context is not None else lq
            dim = module.inner_dim
            calls.append({"step": state["step"], "module": name, "kind": kind_of(name, module), "query_len": lq,
                          "key_len": lk, "batch": b, "flops": 4 * b * lq * lk * dim, "seconds": seconds})
        return hook

    handles = []
    for part_name, part in (("unet", instance.unet), ("vae", instance.vae)):
        for name, module in part.named_modules():
            if isinstance(module, Attention):
                full = f"{part_name}.{name}"
                handles.append(module.register_forward_pre_hook(pre(full), with_kwargs=True))
                handles.append(module.register_forward_hook(post(full), with_kwargs=True))

    class _Counting:  # numbers the steps from the denoiser's forwards
        def __init__(self, inner):
            self._inner = inner

        def __getattr__(self, name):
            return getattr(self._inner, name)

        def predict_noise(self, *args):
            state["step"] += 1
            return self._inner.predict_noise(*args)

        def decode_latents(self, latents):
            state["step"] = "vae"
            return self._inner.decode_latents(latents)

    options = {"num_inference_steps": steps, "guidance_scale": guidance_scale, "scheduler": scheduler}
    s = settings({k: v for k, v in options.items() if v is not None}, instance.denoise_defaults)
    sample = instance.prompt_sample(prompt)
    try:
        t0 = time.perf_counter()
        denoise(_Counting(instance), [sample], s, sequential=False, device=instance.device)  # a forward per step
        total = time.perf_counter() - t0
    finally:
        for h in handles:
            h.remove()
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
    return {"calls": calls, "summary": summary}

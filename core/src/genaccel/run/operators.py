"""Where a diffusion inference's time goes by operator (Golden et al. 2024, Fig. 7): Conv, Linear, Attention
(spatial and cross; a video UNet's temporal attention apart), Norm, Resample (the UNet's and VAE's up- and
down-samplers) and Other, timed with forward hooks on the modules.

Each category gets the exclusive time of its modules (a module's time less that of the categorized modules
inside it: the innermost wins, so an attention's q/k/v projections are Linear and Attention is the rest of the
attention module, as :mod:`genaccel.engine.profiling` counts them); a resampler keeps all its time, its
convolution included.  Other is the inference's wall time outside them (activations, the scheduler, Python).
Hooks rather than ``torch.profiler``: the operator profile's categories know neither Resample nor temporal
attention, and its overhead on the many small ops of a UNet would inflate the eager and SDPA bars unequally.
"""

from __future__ import annotations

import re

import torch

from ..engine.attention import find_attention_sites
from ..engine.clock import synced_now
from ..engine.profiling import module_category

CATEGORIES = ("Conv", "Linear", "Attention", "Temporal attention", "Norm", "Resample", "Other")
_RESAMPLER = re.compile(r"^(Up|Down)sampl")  # diffusers' Upsample2D, Downsample2D, their 1-D and 3-D kin
_CONVS = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)


def _categories(root: torch.nn.Module) -> dict[str, str | None]:
    """Each timed module's category by its path; None for a convolution inside a resampler (timed for the
    convolution total only)."""
    sites = {s.name: "Temporal attention" if s.kind == "temporal" else "Attention" for s in find_attention_sites(root)}
    resamplers, out = [], {}
    for name, m in root.named_modules():
        if any(name.startswith(r + ".") for r in resamplers):
            if isinstance(m, _CONVS):
                out[name] = None
            continue
        if _RESAMPLER.match(type(m).__name__):
            resamplers.append(name)
            out[name] = "Resample"
        elif name in sites:
            out[name] = sites[name]
        elif module_category(m) in ("Conv", "Linear", "Norm"):
            out[name] = module_category(m)
    return out


class OperatorClock:
    """Forward hooks on ``root``'s categorized modules while the block runs: ``seconds`` per category
    (exclusive), and ``conv_s``, ``conv_calls``: every convolution's own time, resamplers' included."""

    def __init__(self, root: torch.nn.Module, device: str):
        self.device, self.seconds = device, dict.fromkeys(CATEGORIES[:-1], 0.0)
        self.conv_s, self.conv_calls, self._stack, self._handles = 0.0, 0, [], []
        modules = dict(root.named_modules())
        for name, category in _categories(root).items():
            m = modules[name]
            self._handles += [m.register_forward_pre_hook(self._pre(category)),
                              m.register_forward_hook(self._post(isinstance(m, _CONVS)))]

    def _pre(self, category):
        def hook(module, args):
            self._stack.append([synced_now(self.device), 0.0, category])
        return hook

    def _post(self, conv: bool):
        def hook(module, args, output):
            start, inner, category = self._stack.pop()
            elapsed = synced_now(self.device) - start
            if conv:
                self.conv_s += elapsed
                self.conv_calls += 1
            if category is not None:
                self.seconds[category] += elapsed - inner
                if self._stack:  # the enclosing categorized module's time excludes this one's
                    self._stack[-1][1] += elapsed
        return hook

    def breakdown(self, wall_s: float) -> dict[str, float]:
        """Seconds per category of an inference of ``wall_s`` seconds; Other is the rest of it."""
        return {**self.seconds, "Other": wall_s - sum(self.seconds.values())}

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


def normalized_bars(baseline: dict, sdpa: dict) -> dict:
    """Fig. 7's two bars from two profiles (``{attention, inference_s, operators}``): each category's
    seconds over the baseline's inference time, so the baseline bar sums to 1 and the SDPA bar to its
    time over the baseline's."""
    base = baseline["inference_s"]
    return {"baseline_s": base, "sdpa_s": sdpa["inference_s"], "categories": list(CATEGORIES),
            "bars": {p["attention"]: {k: v / base for k, v in p["operators"].items()} for p in (baseline, sdpa)}}

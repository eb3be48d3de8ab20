"""Phenaki's three modules built from a preset with random weights: the T5 text encoder (transformers'
``T5EncoderModel``), the MaskGIT transformer and the C-ViViT tokenizer.  On the meta device for the paper's size
(shapes and parameter counts without memory), on a real device otherwise, seeded."""

from __future__ import annotations

import attrs
import torch
from torch import nn

from .cvivit import CViViT
from .maskgit import MaskGIT
from .presets import Preset


def count(module: nn.Module) -> int:
    """Parameters of ``module``, each tensor once (tied weights are one tensor)."""
    return sum(p.numel() for p in module.parameters())


@attrs.define
class PhenakiModules:
    """The built model: text encoder, MaskGIT, C-ViViT, and the preset they came from."""

    preset: Preset
    text_encoder: nn.Module
    maskgit: MaskGIT
    cvivit: CViViT

    def parameter_counts(self) -> dict[str, int]:
        """Per module and in all; ``phenaki`` is MaskGIT + C-ViViT, what Phenaki's own sizes leave the frozen T5 out of."""
        counts = {"text_encoder": count(self.text_encoder), "maskgit": count(self.maskgit),
                  "cvivit": count(self.cvivit)}
        return {**counts, "phenaki": counts["maskgit"] + counts["cvivit"], "total": sum(counts.values())}

    def set_attention(self, impl: str) -> None:
        """Every attention of the three modules to ``eager`` or ``sdpa``."""
        self.maskgit.set_attention(impl)
        self.cvivit.set_attention(impl)
        self.text_encoder.set_attn_implementation(impl)


def build_modules(preset: Preset, *, device: str | torch.device = "cpu", seed: int = 0) -> PhenakiModules:
    """The preset's modules with random weights on ``device`` (``"meta"``: no memory), in eval mode, eager attention."""
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    with torch.device(device):
        text_encoder = T5EncoderModel(T5Config(**preset.t5.config_kwargs()))
        maskgit = MaskGIT(preset.maskgit)
        cvivit = CViViT(preset.cvivit)
    modules = PhenakiModules(preset=preset, text_encoder=text_encoder.eval(), maskgit=maskgit.eval(),
                             cvivit=cvivit.eval())
    modules.set_attention("eager")
    return modules

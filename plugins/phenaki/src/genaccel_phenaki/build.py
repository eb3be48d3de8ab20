"""Phenaki's three modules built from a preset with random weights: the T5 text encoder (transformers'
``T5EncoderModel``), the MaskGIT transformer and the C-ViViT tokenizer.  On the meta device for the paper's size
(shapes and parameter counts without memory; a run materializes them on its device), on a real device otherwise,
seeded.  ``build`` makes the workload of a run: a preset, or a checkpoint folder (``checkpoint``), its frame count
checked before any weight exists."""

from __future__ import annotations

import attrs
import torch
from genaccel.api import GenaccelError, materialize, positive_option, t5_style_tokenizer
from torch import nn

from .config import FrameCountError
from .cvivit import CViViT
from .maskgit import MaskGIT
from .presets import PRESETS, Preset


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

    def placed(self, device: str, dtype: torch.dtype, seed: int) -> PhenakiModules:
        """The modules on ``device`` in ``dtype``: materialized with seeded random weights when on the meta
        device, moved (and cast) otherwise."""
        parts = [self.text_encoder, self.maskgit, self.cvivit]
        if next(self.maskgit.parameters()).is_meta:
            parts = [materialize(m, device, dtype, seed + i) for i, m in enumerate(parts)]
        else:
            parts = [m.to(device) if dtype == torch.float32 else m.to(device, dtype) for m in parts]
        return PhenakiModules(self.preset, *parts)


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


def checked_frames(preset: Preset, value) -> int:
    """The run's ``--frames`` (the preset's where not given): a count C-ViViT takes (1 + k·temporal patch) whose
    tokens fit MaskGIT's positions; otherwise a one-line error saying what would fit."""
    frames = positive_option(value, preset.frames, "--frames")
    try:
        preset.cvivit.check_frames(frames)
    except FrameCountError as e:
        raise GenaccelError(f"--frames {frames}: {e}") from None
    cfg = preset.cvivit
    if cfg.time_steps(frames) * cfg.grid ** 2 > preset.maskgit.max_tokens:
        most = cfg.frames(preset.maskgit.max_tokens // cfg.grid ** 2)
        raise GenaccelError(f"--frames {frames}: {cfg.time_steps(frames) * cfg.grid ** 2} video tokens, but MaskGIT "
                            f"has positions for {preset.maskgit.max_tokens}; use at most {most} frames")
    return frames


def build(options):
    """phenaki/t-v's workload: the run's preset (default ``small``) or ``--checkpoint DIR`` (``checkpoint``)."""
    from .workload import Phenaki

    if options.checkpoint is not None:
        from .checkpoint import load_checkpoint

        return load_checkpoint(options)
    name = options.preset_in(PRESETS, "phenaki/t-v")
    preset = PRESETS[name]
    frames = checked_frames(preset, options.options.get("frames"))
    built = build_modules(preset, device="meta" if preset.meta else options.device, seed=options.seed)
    modules = built.placed(options.device, options.torch_dtype, options.seed)
    return Phenaki(modules=modules, tokenizer=t5_style_tokenizer(preset.t5.vocab_size, preset.text_length),
                   frames=frames, device=options.device, random_weights=True, name=f"phenaki {name}",
                   data=options.data)

"""The ``self-speculative`` decoder (LayerSkip): draft-and-verify cycles of :func:`genaccel.llm.speculative.speculate`,
greedy (exact) or top-p (rejection sampling), with the exit layer and draft length from the decoder's
or run's options, else the checkpoint's saved pair, else N/4 and 4."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import GenaccelError
from ..llm.decoding import loop_options, with_media
from ..llm.speculative import checkpoint_settings, speculate
from ..plugin.batch import BatchResult


class SelfSpeculative:
    """Decoder ``self-speculative``: greedy (exact) or, with ``sampling``, top-p."""

    def __init__(self, exit_layer: int | None = None, draft_len: int | None = None, sampling: bool = False,
                 temperature: float = 0.6, top_p: float = 0.9, **options):
        self.exit_layer, self.draft_len = exit_layer, draft_len
        self.sampling, self.temperature, self.top_p = sampling, temperature, top_p
        self._generator = None

    def settings(self, ctx) -> tuple[int, int]:
        """(E, k): the decoder's or run's options, else the checkpoint's saved pair, else N/4 and 4."""
        saved = checkpoint_settings(ctx.config.checkpoint)
        options = ctx.config.options
        n = ctx.instance.model.num_layers
        e = self.exit_layer or options.get("exit_layer") or saved.get("exit_layer") or max(1, n // 4)
        k = self.draft_len or options.get("draft_len") or saved.get("draft_len") or 4
        if not 1 <= e <= n:
            raise GenaccelError(f"exit layer {e} is out of range: the model has {n} layers; use 1..{n}")
        if k < 1:
            raise GenaccelError(f"draft length must be >= 1, got {k}")
        return e, k

    @torch.no_grad()
    def run(self, ctx, batch: Sequence) -> BatchResult:
        exit_layer, k = self.settings(ctx)
        if self.sampling and self._generator is None:
            self._generator = torch.Generator(device=ctx.device).manual_seed(ctx.seed)
        sampling = (self.temperature, self.top_p, self._generator) if self.sampling else None
        return with_media(ctx, batch, lambda b: speculate(ctx.instance.model, b, exit_layer=exit_layer, draft_len=k,
                                                          sampling=sampling, **loop_options(ctx)))

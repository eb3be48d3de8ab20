"""The ``cfg`` and ``cfg-sequential`` decoders: classifier-free (contrastive) guidance, batched (the
conditional and unconditional rows in one forward) or sequential (a second forward per step).

A workload plays guidance through one of four roles: :class:`~genaccel.plugin.roles.TokenGuidance`
(a token model's logits: :func:`genaccel.llm.guidance.guided_generate`, with temperature and top-p,
or top-k where the run or the workload gives a k),
:class:`~genaccel.plugin.roles.Denoiser` (the core's denoising loop, :func:`genaccel.diffusion.loop.denoise`),
:class:`~genaccel.plugin.roles.MaskedTokens` (the core's parallel decoding,
:func:`genaccel.diffusion.parallel.parallel_decode`) or :class:`~genaccel.plugin.roles.GuidedLoop` (the
workload's own loop: a cascade).
The guidance scale is the decoder's option ``guidance_scale``, else the run's, else the workload's.
"""

from __future__ import annotations

import torch

from ..diffusion.loop import denoise, settings
from ..diffusion.parallel import parallel_decode, parallel_settings
from ..llm.decoding import loop_options, top_k_pick, top_p_pick, with_media
from ..llm.guidance import guided_generate
from ..plugin.batch import BatchResult
from ..plugin.roles import Denoiser, GuidedLoop, MaskedTokens


class CFG:
    batched = True

    def __init__(self, guidance_scale: float | None = None, temperature: float = 0.6, top_p: float = 0.9,
                 top_k: int | None = None, scheduler: str | None = None, num_inference_steps: int | None = None,
                 **options):
        self.guidance_scale, self.temperature, self.top_p, self.top_k = guidance_scale, temperature, top_p, top_k
        self._generator = None
        self._twin = None

    def run(self, ctx, batch) -> BatchResult:
        options, out_dir = ctx.config.options, ctx.config.out_dir
        if ctx.has(GuidedLoop):  # the workload's own loop (a cascade, parallel decoding)
            return ctx.instance.guided_run(batch, options, not self.batched, out_dir)
        inst = ctx.instance
        if ctx.has(Denoiser):
            return denoise(inst, batch, settings(options, inst.denoise_defaults), sequential=not self.batched,
                           device=ctx.device, out_dir=out_dir)
        if ctx.has(MaskedTokens):
            run = parallel_settings(options, inst.decode_defaults, workload=ctx.config.workload)
            return parallel_decode(inst, batch, run, sequential=not self.batched, device=ctx.device, out_dir=out_dir)
        return with_media(ctx, batch, lambda b: self._tokens(ctx, b))

    def _tokens(self, ctx, batch) -> BatchResult:
        inst = ctx.instance
        if self._generator is None:
            self._generator = torch.Generator(device=ctx.device).manual_seed(ctx.seed)
        if not self.batched and self._twin is None:  # a second stream over the same weights and settings
            self._twin = inst.model.twin()
        scale = self.guidance_scale
        if scale is None:
            scale = ctx.config.options.get("guidance_scale")
        scale = float(inst.guidance_scale if scale is None else scale)
        return guided_generate(inst.model, batch, [inst.unconditional_prompt(s) for s in batch], scale=scale,
                               pick=self._picker(inst), eoi=inst.eoi, twin=None if self.batched else self._twin,
                               **{k: v for k, v in loop_options(ctx).items() if k != "eos_id"})

    def _picker(self, inst):
        """Top-k with the run's k, else the workload's; top-p where neither gives one."""
        k = inst.top_k if self.top_k is None else self.top_k
        if k is not None:
            return top_k_pick(k, self.temperature, self._generator)
        return top_p_pick(self.temperature, self.top_p, self._generator)


class SequentialCFG(CFG):
    batched = False

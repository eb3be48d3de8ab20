"""Iterative parallel decoding of masked tokens (MaskGIT): the loop of Muse's images and Phenaki's
videos, run by the guidance decoders for a workload playing
:class:`~genaccel.plugin.roles.MaskedTokens`.

Every token starts masked.  Each step runs the transformer over all of them (the text as
cross-attention), guides the logits ``u + s·(c − u)`` (the unconditional and conditional rows in
one forward of 2B rows, or in two forwards), and ``diffusers``' ``AmusedScheduler`` samples every
masked position and re-masks the least confident ones along the cosine masking schedule, seeded by
the batch's first sample, so that the same weights, seed and steps give ``AmusedPipeline``'s
tokens.  Every step has the same shapes (one compiled graph, one CUDA graph); the count of tokens
still masked after each step is recorded.  Phases: ``text encoder``, ``decode`` (each step timed),
and the workload's token decoder (``decode_phase``).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch
from diffusers import AmusedScheduler

from ..engine.clock import StepClock, synced_now
from ..engine.profiling import phase
from ..errors import GenaccelError
from ..plugin.batch import BatchResult


@attrs.frozen(kw_only=True)
class ParallelSettings:
    num_inference_steps: int
    guidance_scale: float


def parallel_settings(options: dict, defaults: dict, *, workload: str) -> ParallelSettings:
    """The steps and guidance scale of a run's ``options`` (the workload's ``defaults`` where not given),
    checked; a scheduler is refused, naming ``workload`` (the masking schedule is the only one)."""
    if options.get("scheduler") is not None:
        raise GenaccelError(f"--scheduler {options['scheduler']!r} is not known to {workload}, whose parallel "
                            f"decoding has one schedule, the cosine masking schedule; drop --scheduler")
    steps = options.get("num_inference_steps")
    steps = defaults["num_inference_steps"] if steps is None else int(steps)
    if steps < 1:
        raise GenaccelError(f"--num-inference-steps must be at least 1, got {steps}")
    scale = options.get("guidance_scale")
    return ParallelSettings(num_inference_steps=steps,
                            guidance_scale=defaults["guidance_scale"] if scale is None else float(scale))


def _logits(inst, tokens, cond, uncond, s: ParallelSettings, sequential: bool):
    """The step's guided logits and the shapes of the forwards it ran."""
    if uncond is None:
        return inst.token_logits(tokens, *cond), (tuple(tokens.shape),)
    if sequential:
        u, c = inst.token_logits(tokens, *uncond), inst.token_logits(tokens, *cond)
        shapes = (tuple(tokens.shape),)
    else:
        both = torch.cat([tokens, tokens])
        u, c = inst.token_logits(both, *(torch.cat([a, b]) for a, b in zip(uncond, cond))).chunk(2)
        shapes = (tuple(both.shape),)
    return u + s.guidance_scale * (c - u), shapes


@torch.no_grad()
def parallel_decode(inst, batch: Sequence, s: ParallelSettings, *, sequential: bool, device: str,
                    out_dir=None) -> BatchResult:
    """Prompts → tokens → media for one batch of prompt samples through the MaskedTokens workload ``inst``."""
    bsz, guided = len(batch), s.guidance_scale > 1.0
    inst.executor.new_batch()
    generator = torch.Generator().manual_seed(batch[0].seed)
    t0 = synced_now(device)
    with phase("text encoder"):
        cond = inst.encode_prompt([sample.prompt for sample in batch])
        uncond = inst.encode_prompt([""] * bsz) if guided else None
    t1 = synced_now(device)
    scheduler = AmusedScheduler.from_config(inst.scheduler_config)
    scheduler.set_timesteps(s.num_inference_steps, inst.temperatures(s.num_inference_steps), device)
    mask = scheduler.config.mask_token_id
    tokens = torch.full(inst.tokens_shape(bsz), mask, dtype=torch.long, device=device)
    shapes, masked = set(), []
    clock = StepClock(device)
    clock.start()
    for timestep in scheduler.timesteps:
        with phase("decode"):
            logits, seen = _logits(inst, tokens, cond, uncond, s, sequential)
            shapes.add(seen)
            tokens = scheduler.step(model_output=logits, timestep=timestep, sample=tokens,
                                    generator=generator).prev_sample
        masked.append(int((tokens == mask).sum()) // bsz)
        clock.mark()
    step_times = clock.seconds()
    t2 = synced_now(device)
    with phase(inst.decode_phase):
        media = inst.decode_tokens(tokens)
    t3 = synced_now(device)
    phases = {"text encoder": t1 - t0, "decode": t2 - t1, inst.decode_phase: t3 - t2}
    per_sample = tokens[0].numel()
    files = inst.save_outputs(batch, media, out_dir)
    records = [{"id": sample.id, "prompt": sample.prompt, "seed": sample.seed, "input_tokens": sample.input_tokens,
                "output_tokens": per_sample, "latency_s": t3 - t0,
                "ttft_s": None, "tpot_s": None, "steps": s.num_inference_steps, "units": inst.units_per_sample,
                "phases": dict(phases), **f} for sample, f in zip(batch, files)]
    return BatchResult(records=records, outputs=[[] for _ in batch], latency_s=t3 - t0, prefill_s=phases["text encoder"],
                       decode_s=phases["decode"], decode_steps=s.num_inference_steps,
                       weight_passes=2 if guided and sequential else 1,
                       step_s=[b - a for a, b in zip([0.0, *step_times], step_times)], phases=phases,
                       extra={"parallel": {**attrs.asdict(s), "batched": not sequential, "static_shapes": len(shapes) == 1,
                                           "sequence_length": per_sample, "masked_after_step": masked},
                              "media": media, "tokens": tokens.cpu()})

"""``diffusers``' own pipeline on a latent-diffusion workload's components: the reference that
genaccel's denoising loop and its optimization stacks are measured against (as ``hf-generate`` is
for token models), run by the ``diffusers-pipeline`` decoder through the workload's
``pipeline_run`` (role ``PipelineReference``).

A ``StableDiffusionPipeline`` (2-D UNet) or ``TextToVideoSDPipeline`` (3-D UNet) is built from the
workload's tokenizer, text encoder, UNet and VAE, with the run's scheduler, steps and guidance
scale and one CPU generator per sample seeded as the denoising loop seeds it, so that the images
are the loop's (up to float rounding).  The pipeline runs with diffusers' defaults: SDPA attention
(``AttnProcessor2_0``) and transformers' default text-encoder attention, no compile.  Latency is
the whole pipeline call; its outputs are kept (``extra["media"]``) for the quality comparison.
"""

from __future__ import annotations

import torch
from diffusers import StableDiffusionPipeline, TextToVideoSDPipeline
from diffusers.models.attention_processor import AttnProcessor2_0

from ..engine.clock import synced_now
from ..plugin.batch import BatchResult
from .loop import Settings, make_scheduler
from .stepcache import is_3d


def make_pipeline(inst, s: Settings, pipeline_class=None, **extra):
    """The diffusers pipeline of a :class:`~genaccel.diffusion.latent.LatentDiffusion` workload's parts:
    ``pipeline_class`` with the ``extra`` components and arguments (SDXL's), else Stable Diffusion's or
    text-to-video's by the UNet."""
    inst.set_attention("sdpa")
    inst.unet.set_attn_processor(AttnProcessor2_0())  # diffusers' default (genaccel's 3-D UNet shares the text)
    parts = dict(vae=inst.vae, text_encoder=inst.text_encoder, tokenizer=inst.tokenizer, unet=inst.unet,
                 scheduler=make_scheduler(s.scheduler, inst.scheduler_config))
    if pipeline_class is not None:
        pipe = pipeline_class(**parts, **extra)
    elif is_3d(inst.unet):
        pipe = TextToVideoSDPipeline(**parts)
    else:
        pipe = StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def run_pipeline(inst, pipe, batch, s: Settings, out_dir) -> BatchResult:
    """One batch through ``pipe`` with the run's settings; the media saved as the loop saves them."""
    video = is_3d(inst.unet)
    kwargs = dict(num_inference_steps=s.num_inference_steps, guidance_scale=s.guidance_scale,
                  height=inst.image_size, width=inst.image_size, output_type="np",
                  generator=[torch.Generator().manual_seed(sample.seed) for sample in batch])
    if video:
        kwargs["num_frames"] = inst.frames
    t0 = synced_now(inst.device)
    out = pipe([sample.prompt for sample in batch], **kwargs)
    latency = synced_now(inst.device) - t0
    media = torch.from_numpy(out.frames if video else out.images).float()
    steps = len(pipe.scheduler.timesteps)
    files = inst.save_outputs(batch, media, out_dir)
    records = [
        {"id": sample.id, "prompt": sample.prompt, "seed": sample.seed, "input_tokens": sample.input_tokens,
         "output_tokens": 0, "latency_s": latency,
         "ttft_s": None, "tpot_s": None, "steps": steps, "units": inst.units_per_sample, **extra}
        for sample, extra in zip(batch, files)
    ]
    return BatchResult(records=records, outputs=[[] for _ in batch], latency_s=latency, decode_steps=steps,
                       extra={"denoise": {"scheduler": s.scheduler, "num_inference_steps": s.num_inference_steps,
                                          "guidance_scale": s.guidance_scale, "pipeline": type(pipe).__name__},
                              "media": media})

"""The workload contract: small roles a workload declares once (``WorkloadSpec.roles``).

Each role names the members the core calls and the capability it gives optimizations and
decoders.  When a workload is built, :func:`check_roles` verifies that the instance has every
member of every role its spec declares; a missing one is an error naming the workload, the role
and the member.  Past that check the core decides by the declared roles (``ctx.has(MediaCodec)``),
never by probing the instance.

A workload class may inherit the roles it plays (documentation and IDE help); what counts is the
spec's declaration.  This module imports nothing heavy: specs are registered without torch.
"""

from __future__ import annotations

import inspect

from .errors import GenaccelError


class Role:
    """Base of every role.  ``members``: what the core calls; ``capability``: what it offers."""

    members: tuple[str, ...] = ()
    capability: str | None = None

    @classmethod
    def missing(cls, instance) -> list[str]:
        return [m for m in cls.members if inspect.getattr_static(instance, m, _ABSENT) is _ABSENT]


_ABSENT = object()


class Workload(Role):
    """Every workload: the module holding its weights, its inputs and what the report says of it.

    - ``module``: the ``nn.Module`` holding every weight (model bytes, quantization);
    - ``random_weights``: True for presets, False for checkpoints;
    - ``make_samples(n, seed, max_new_tokens, seq_len=None) -> list``: inputs following the
      study's distributions (or the user's data); ``seq_len`` fixes the input length for sweeps;
    - ``describe() -> dict``: what the report shows about the model.
    """

    members = ("module", "random_weights", "make_samples", "describe")


class TokenModel(Role):
    """Autoregressive token generation over the step protocol (``genaccel.causal_lm``).

    - ``model``: the step protocol (``setup``, ``prefill``, ``decode``, ``reorder_cache`` ...);
    - ``eos_token_id``, ``pad_token_id``; ``encode(text) -> ids``, ``decode(ids) -> text``.
    Samples carry ``input_ids`` and ``max_new_tokens``.
    """

    members = ("model", "eos_token_id", "pad_token_id", "encode", "decode")
    capability = "autoregressive"


class BatchRunner(Role):
    """Non-autoregressive work: one call per batch (``run_batch(batch) -> dict``, see the ``nar`` decoder)."""

    members = ("run_batch",)
    capability = "non-autoregressive"


class MediaCodec(Role):
    """Inputs or outputs that are media (images, speech): encoded before and decoded after the model.

    - ``media_phases``: (encode phase name or None, decode phase name, a tuple of names the
      workload times itself, or None);
    - ``encode_inputs(batch) -> batch``; ``decode_outputs(batch, outputs) -> media`` (or
      ``(media, {phase: seconds})`` when the decode phase is a tuple);
    - ``save_outputs(batch, media, out_dir) -> list[dict]``: files written, per sample (untimed).
    """

    members = ("media_phases", "encode_inputs", "decode_outputs", "save_outputs")
    capability = "media"


class PromptInput(Role):
    """``genaccel generate``: ``prompt_sample(text, max_new_tokens, options) -> sample`` for a
    workload whose input is more than text (an image beside the prompt, speech ...)."""

    members = ("prompt_sample",)
    capability = "prompt"


class TeacherForcing(Role):
    """Accuracy impact of lossy stacks: ``teacher_forced_logits(input_ids) -> logits`` (B, L, V)."""

    members = ("teacher_forced_logits",)
    capability = "teacher-forcing"


class WeightStreaming(Role):
    """Bytes a decode step reads (MBU): ``weight_bytes_per_step()`` and ``kv_bytes_per_token()``."""

    members = ("weight_bytes_per_step", "kv_bytes_per_token")
    capability = "weight-streaming"


class EarlyExit(Role):
    """LayerSkip: ``training_texts() -> list[str]`` to train early exits on; the step protocol's
    ``draft``/``verify``/``crop`` drive self-speculative decoding."""

    members = ("training_texts",)
    capability = "early-exit"


class AttentionSwitch(Role):
    """``set_attention(impl)``: ``eager`` (the baseline) or ``sdpa`` (and workload kernels)."""

    members = ("set_attention",)
    capability = "attention"


class KVCacheSwitch(Role):
    """``set_cache(kind)``: ``dynamic`` (the baseline) or ``static``."""

    members = ("set_cache",)
    capability = "kv-cache"


class Compilable(Role):
    """``set_compile(mode) -> note``: the hot steps go through ``torch.compile``."""

    members = ("set_compile",)
    capability = "compile"


class CUDAGraphable(Role):
    """``set_cuda_graph() -> note``: the hot steps replayed from CUDA graphs."""

    members = ("set_cuda_graph",)
    capability = "cuda-graph"


class Denoiser(Role):
    """Diffusion: the core's denoising loop (:func:`genaccel.denoise.denoise`) drives the
    workload's text encoder, denoiser and decoder over a ``diffusers`` scheduler.

    - ``denoise_defaults``: ``{"scheduler", "num_inference_steps", "guidance_scale"}`` where the
      run gives none; ``scheduler_config``: the ``diffusers`` scheduler config (betas, offsets);
    - ``dtype``: the latents' dtype; ``executor``: the StepExecutor its compiled parts run through;
    - ``encode_prompt(prompts) -> embeddings`` (B, L, D); ``latent_shape(batch_size) -> tuple``;
    - ``predict_noise(latents, t, embeddings) -> noise`` (the UNet or transformer forward);
    - ``decode_latents(latents) -> media`` (VAE decode, per sample); ``units_per_sample``
      (1 image, or the frames of a video);
    - ``save_outputs(batch, media, out_dir) -> list[dict]``: files written, per sample (untimed).
    """

    members = ("denoise_defaults", "scheduler_config", "dtype", "executor", "encode_prompt", "latent_shape",
               "predict_noise", "decode_latents", "units_per_sample", "save_outputs")
    capability = "denoise"


class GuidedLoop(Role):
    """A workload with its own guided generation loop (a diffusion cascade, parallel decoding):
    the ``cfg`` decoders call ``guided_run(ctx, batch, sequential) -> BatchResult``, the
    ``diffusers-pipeline`` reference ``pipeline_run(ctx, batch) -> BatchResult`` (diffusers' own
    pipelines on the same weights)."""

    members = ("guided_run", "pipeline_run")
    capability = "guided-loop"


ROLES: dict[str, type[Role]] = {
    cls.__name__: cls
    for cls in (Workload, TokenModel, BatchRunner, MediaCodec, PromptInput, TeacherForcing, WeightStreaming,
                EarlyExit, AttentionSwitch, KVCacheSwitch, Compilable, CUDAGraphable, Denoiser, GuidedLoop)
}


def capabilities_of(roles) -> frozenset[str]:
    return frozenset(r.capability for r in roles if r.capability)


def check_roles(workload_name: str, roles, instance) -> None:
    """Every member of every declared role is present on the built instance."""
    for role in (Workload, *roles):
        missing = role.missing(instance)
        if missing:
            raise GenaccelError(
                f"workload {workload_name} declares role {role.__name__} but its instance "
                f"({type(instance).__name__}) lacks {', '.join(missing)}"
            )

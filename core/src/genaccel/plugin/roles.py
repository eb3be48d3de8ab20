"""The workload contract: the roles a workload's spec declares once (``WorkloadSpec.roles``), each
listing the members the core calls and giving the capability decoders and optimizations require.

A workload offers a required role when it declares that role or one derived from it (``Denoiser`` is a
``Guided`` role, so a guidance decoder runs it).  Past the check at build (:func:`genaccel.plugin.role.check_roles`)
the core decides by the declared roles (``ctx.has(MediaCodec)``), never by probing the instance.
Workload classes do not inherit roles (the stubs would satisfy the check without doing anything); the
spec is the one declaration.  Light: no torch.
"""

from __future__ import annotations

from .role import Member, Role

# --- protocols: what an attribute's value must play ------------------------------------------------


class StepProtocol(Role):
    """The step protocol of an autoregressive model (:class:`genaccel.llm.causal_lm.HFCausalLM`)."""

    num_layers = Member()

    def setup(self, batch_size, max_seq_len): ...
    def prefill(self, input_ids, valid=None): ...
    def decode(self, tokens, pos, kv_len=None): ...


class ReorderableSteps(StepProtocol):
    """A step protocol whose cache follows beam search's surviving hypotheses."""

    def reorder_cache(self, index, length=None): ...


class TwinSteps(StepProtocol):
    """A step protocol that gives a second one over the same weights with a cache of its own (a second
    stream decoded by separate forwards: unbatched guidance), and conditions guidance's two streams
    (``guidance_streams(twin)``: an encoder-decoder's streams differ in their encoder states)."""

    def twin(self): ...
    def guidance_streams(self, twin=None): ...


class SpeculativeSteps(StepProtocol):
    """A step protocol with LayerSkip's draft, verify and crop (:mod:`genaccel.llm.speculation`)."""

    def draft(self, tokens, pos, exit_layer): ...
    def verify(self, last, hidden, pos, exit_layer): ...
    def crop(self, length): ...
    def reset_steps(self): ...


# --- the roles -------------------------------------------------------------------------------------


class Workload(Role):
    """Every workload: the module holding its weights, its inputs and what the report says of it.

    ``module``: the ``nn.Module`` holding every weight; ``random_weights``: True for presets, False
    for checkpoints; ``make_samples``: inputs following the study's distributions (or the user's
    data), ``seq_len`` fixing the input length for sweeps; ``describe``: what the report shows.
    """

    module = Member()
    random_weights = Member()

    def make_samples(self, n, seed, max_new_tokens, seq_len=None): ...
    def describe(self): ...


class TokenModel(Role):
    """Autoregressive token generation over the step protocol; samples carry ``input_ids`` and
    ``max_new_tokens``."""

    capability = "autoregressive"
    model = Member(plays=StepProtocol)
    eos_token_id = Member()
    pad_token_id = Member()

    def encode(self, text): ...
    def decode(self, ids): ...


class BatchRunner(Role):
    """Non-autoregressive work: one call per batch (``run_batch(batch) -> dict``, see the ``nar`` decoder)."""

    capability = "non-autoregressive"

    def run_batch(self, batch): ...


class MediaCodec(Role):
    """Inputs or outputs that are media (images, speech): encoded before and decoded after the model.

    ``media_phases``: (encode phase name or None, decode phase name, or a tuple of names the workload
    times itself, or None); ``decode_outputs`` returns the media (or ``(media, {phase: seconds})``
    when the decode phase is a tuple); ``save_outputs`` writes files, untimed, per sample.
    """

    capability = "media"
    media_phases = Member()

    def encode_inputs(self, batch): ...
    def decode_outputs(self, batch, outputs): ...
    def save_outputs(self, batch, media, out_dir): ...


class PromptInput(Role):
    """``genaccel generate``: a sample from a prompt for a workload whose input is more than text."""

    capability = "prompt"

    def prompt_sample(self, text, max_new_tokens=None, options=None): ...


class TeacherForcing(Role):
    """Accuracy impact of lossy stacks: ``model``'s steps decode prompts of token ids alone, so the
    accuracy check (:mod:`genaccel.run.accuracy`) feeds them a reference's tokens one step at a time
    and scores each step's next-token distribution."""

    capability = "teacher-forcing"
    model = Member(plays=StepProtocol)


class WeightStreaming(Role):
    """Bytes a decode step reads (MBU)."""

    capability = "weight-streaming"

    def weight_bytes_per_step(self): ...
    def kv_bytes_per_token(self): ...


class EarlyExit(Role):
    """LayerSkip: text to train early exits on, and a step protocol that drafts and verifies."""

    capability = "early-exit"
    model = Member(plays=SpeculativeSteps)
    tokenizer = Member()

    def training_texts(self): ...


class BeamSearch(Role):
    """Beam search: the step protocol reorders its cache after every step."""

    capability = "beam"
    model = Member(plays=ReorderableSteps)


class TransformersReference(Role):
    """transformers' own ``generate`` on the same weights (the ``hf-generate`` reference decoder)."""

    capability = "hf-generate"

    def hf_generate(self, input_ids, attention_mask, generation_config): ...


class LlamaCppReference(Role):
    """llama.cpp on the run's own weights, exported to GGUF (the ``llama-cpp`` reference decoder)."""

    capability = "llama-cpp"
    tokenizer = Member()

    def kv_bytes_per_token(self): ...


class Quantizable(Role):
    """The linear layers of ``module`` may be quantized (torchao weight configs, autoquant)."""

    capability = "quantize"
    module = Member()


class AttentionSwitch(Role):
    """``eager`` attention (the baseline) or ``sdpa`` (and workload kernels); ``set_attention`` may return a
    note on how it attends (None: nothing beyond SDPA's own)."""

    capability = "attention"

    def set_attention(self, impl): ...


class KVCacheSwitch(Role):
    """``dynamic`` (the baseline) or ``static`` KV cache."""

    capability = "kv-cache"

    def set_cache(self, kind): ...


class KVCacheDtype(Role):
    """The static KV cache stored in another dtype than the model computes in; returns a note."""

    capability = "kv-dtype"

    def set_kv_dtype(self, dtype): ...


class Compilable(Role):
    """The hot steps go through ``torch.compile``; returns a note for the report."""

    capability = "compile"

    def set_compile(self, mode): ...


class CUDAGraphable(Role):
    """The hot steps replayed from CUDA graphs; returns a note for the report."""

    capability = "cuda-graph"

    def set_cuda_graph(self): ...


class ChannelsLast(Role):
    """Convolutions (and their inputs) in channels-last memory layout; returns a note."""

    capability = "channels-last"

    def set_channels_last(self): ...


class FusedQKV(Role):
    """Each attention's query, key and value projections fused into one linear; returns a note."""

    capability = "fused-qkv"

    def fuse_qkv(self): ...


class Guided(Role):
    """Classifier-free (contrastive) guidance: what the ``cfg`` and ``cfg-sequential`` decoders run.
    A workload plays it through one of the roles derived from it."""

    capability = "cfg"


class TokenGuidance(Guided):
    """Guidance over a token model's logits: an unconditional prompt per sample, a guidance scale, the
    sampler's default ``top_k`` (None: nucleus sampling) and the token forced after the last sampled one
    (``eoi``: Chameleon's end of image; None forces none)."""

    capability = "token-guidance"
    model = Member(plays=TwinSteps)
    guidance_scale = Member()
    top_k = Member()
    eoi = Member()

    def unconditional_prompt(self, sample): ...


class Denoiser(Guided):
    """Diffusion: the core's denoising loop (:func:`genaccel.diffusion.loop.denoise`) drives the
    workload's text encoder, denoiser and decoder over a ``diffusers`` scheduler.

    ``denoise_defaults``: scheduler, steps and guidance scale where the run gives none;
    ``scheduler_config``: the ``diffusers`` scheduler config; ``dtype``: the latents' dtype;
    ``executor``: the StepExecutor its compiled parts run through; ``units_per_sample``: 1 image, or
    the frames of a video; ``begin_step(index)``: the loop starts step ``index`` (0: a batch's first);
    ``encode_negative(batch_size)``: classifier-free guidance's unconditional embeddings.
    """

    capability = "denoise"
    denoise_defaults = Member()
    scheduler_config = Member()
    dtype = Member()
    executor = Member()
    units_per_sample = Member()

    def encode_prompt(self, prompts): ...
    def encode_negative(self, batch_size): ...
    def latent_shape(self, batch_size): ...
    def predict_noise(self, latents, t, embeddings): ...
    def begin_step(self, index): ...
    def decode_latents(self, latents): ...
    def save_outputs(self, batch, media, out_dir): ...


class GuidedLoop(Guided):
    """A workload with its own guided generation loop (a diffusion cascade, parallel decoding): the
    guidance decoders call ``guided_run(batch, options, sequential, out_dir) -> BatchResult`` with the
    run's checked options (scheduler, steps, guidance scale and the workload's own), from which the
    workload takes its settings."""

    capability = "guided-loop"

    def guided_run(self, batch, options, sequential, out_dir): ...


class MaskedTokens(Guided):
    """Parallel decoding of masked tokens (MaskGIT: Muse's images, Phenaki's videos): the core's loop
    (:func:`genaccel.diffusion.parallel.parallel_decode`) runs the workload's transformer over every
    token at every step, guided, and ``diffusers``' ``AmusedScheduler`` unmasks them along the cosine
    schedule.

    ``decode_defaults``: steps and guidance scale where the run gives none; ``scheduler_config``: the
    ``AmusedScheduler`` config (its ``mask_token_id``); ``temperatures(steps)``: the re-masking noise's
    (start, end) temperatures; ``tokens_shape(batch_size)``: the token grid (B, ...); ``encode_prompt``
    returns a tuple of conditioning tensors (batch first) that ``token_logits(tokens, *conditioning)``
    takes, giving logits (B, V, ...) or (B, L, V) through ``executor``; ``decode_tokens`` turns the final
    tokens into media in phase ``decode_phase``."""

    capability = "masked-tokens"
    decode_defaults = Member()
    scheduler_config = Member()
    executor = Member()
    units_per_sample = Member()
    decode_phase = Member()

    def temperatures(self, steps): ...
    def tokens_shape(self, batch_size): ...
    def encode_prompt(self, prompts): ...
    def token_logits(self, tokens, *conditioning): ...
    def decode_tokens(self, tokens): ...
    def save_outputs(self, batch, media, out_dir): ...


class AttentionRecord(Role):
    """The study's attention characterization (Figs. 8-9): ``attention_sites()`` names the attention modules
    one inference runs (:class:`genaccel.engine.attention.AttentionSite`: each with its kind, self, cross,
    spatial or temporal, or None to decide self or cross per call), and ``period_options`` the run options that
    make one inference one period of the model (``{"num_inference_steps": 1}``: one denoising step; ``{}`` for
    a token model, whose record is one whole generation)."""

    capability = "attention-record"
    period_options = Member()

    def attention_sites(self): ...


class StepCache(Role):
    """A denoiser that reuses deep features across adjacent steps (DeepCache); returns a note."""

    capability = "step-cache"

    def set_step_cache(self, interval): ...


class PipelineReference(Role):
    """``diffusers``' own pipelines on the workload's components (the ``diffusers-pipeline`` reference
    decoder): ``pipeline_run(batch, options, out_dir) -> BatchResult``, ``options`` as for ``guided_run``."""

    capability = "diffusers-pipeline"

    def pipeline_run(self, batch, options, out_dir): ...


#: the roles :class:`genaccel.diffusion.latent.LatentDiffusion` plays, for the specs of its workloads
LATENT_DIFFUSION_ROLES = (Denoiser, PromptInput, PipelineReference, Quantizable, AttentionSwitch, FusedQKV, ChannelsLast,
                          StepCache, Compilable, CUDAGraphable, AttentionRecord)

#: the roles every token workload on :class:`genaccel.llm.workload.CausalLMWorkload` plays: the base turns their
#: members into the model's settings (Quantizable: the linears of its ``module``)
CAUSAL_LM_ROLES = (TokenModel, WeightStreaming, Quantizable, AttentionSwitch, KVCacheSwitch, KVCacheDtype, Compilable,
                   CUDAGraphable)

#: the roles a code-completion workload on :class:`genaccel.llm.completion.CodeCompletion` plays
CODE_COMPLETION_ROLES = (*CAUSAL_LM_ROLES, TeacherForcing, EarlyExit, BeamSearch, TransformersReference,
                         LlamaCppReference, AttentionRecord)

#: the roles of a token workload whose inputs or outputs are media (Chameleon's and Parti's images, Seamless's
#: speech): :data:`CAUSAL_LM_ROLES`, media encoded before and decoded after the model, and ``generate``'s prompt
MEDIA_TOKEN_ROLES = (*CAUSAL_LM_ROLES, MediaCodec, PromptInput)

#: the roles a masked-token workload (Muse, Phenaki) plays: the core's parallel decoding
#: (:func:`genaccel.diffusion.parallel.parallel_decode`), ``generate``'s prompt
#: (:class:`genaccel.diffusion.prompts.Prompted`), quantizable linears, the attention switch, and hot steps
#: through a step executor (:class:`genaccel.engine.executor.CompiledSteps`)
MASKED_TOKEN_ROLES = (MaskedTokens, PromptInput, Quantizable, AttentionSwitch, Compilable, CUDAGraphable)

ROLES: dict[str, type[Role]] = {
    cls.__name__: cls
    for cls in (Workload, TokenModel, BatchRunner, MediaCodec, PromptInput, TeacherForcing, WeightStreaming, EarlyExit,
                BeamSearch, TransformersReference, Quantizable, AttentionSwitch, KVCacheSwitch, KVCacheDtype,
                Compilable, CUDAGraphable, ChannelsLast, FusedQKV, Guided, TokenGuidance, Denoiser, GuidedLoop, MaskedTokens,
                StepCache, PipelineReference, AttentionRecord)
}

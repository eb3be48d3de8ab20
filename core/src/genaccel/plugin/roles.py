"""The workload contract: roles a workload's spec declares once (``WorkloadSpec.roles``).

A role lists the members the core calls: its methods, written as stubs whose signatures say how
they are called, and its attributes (:class:`Member`), whose value may itself have to play a
protocol role (``model = Member(plays=StepProtocol)``).  A role gives decoders and optimizations a
capability: a decoder or optimization ``requires`` roles, and a workload offers a required role when
it declares that role or one derived from it (``Denoiser`` is a ``Guided`` role, so a guidance
decoder runs it).

When a workload is built, :func:`check_roles` verifies the instance against every declared role: a
missing member, an attribute that is not callable where a method is needed, or a method whose
signature cannot take the role's arguments fails at once, naming the workload, the role and the
member.  Past that check the core decides by the declared roles (``ctx.has(MediaCodec)``), never
by probing the instance.  Workload classes do not inherit roles (the stubs would satisfy the check
without doing anything); the spec is the one declaration.  Light: no torch.
"""

from __future__ import annotations

import inspect

from ..errors import GenaccelError

_ABSENT = object()


class Member:
    """An attribute a role needs.  ``plays``: a protocol (a :class:`Role`) its value must play too."""

    def __init__(self, plays: type[Role] | None = None):
        self.plays = plays


class Role:
    """Base of every role.  ``capability``: the name ``genaccel list`` shows for what it offers."""

    capability: str | None = None
    _methods: dict[str, inspect.Signature] = {}
    _attributes: dict[str, Member] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        methods, attributes = {}, {}
        for base in reversed(cls.__mro__[1:]):
            if issubclass(base, Role):
                methods.update(base._methods)
                attributes.update(base._attributes)
        for name, value in vars(cls).items():
            if name.startswith("_") or name == "capability":
                continue
            if isinstance(value, Member):
                attributes[name] = value
            elif inspect.isfunction(value):
                methods[name] = inspect.signature(value)
        cls._methods, cls._attributes = methods, attributes

    @classmethod
    def members(cls) -> tuple[str, ...]:
        return (*cls._attributes, *cls._methods)

    @classmethod
    def problems(cls, instance, prefix: str = "") -> list[str]:
        """What ``instance`` lacks or gets wrong of this role's members (empty: it plays the role)."""
        found = []
        for name, member in cls._attributes.items():
            if inspect.getattr_static(instance, name, _ABSENT) is _ABSENT:
                found.append(f"lacks {prefix}{name}")
            elif member.plays is not None:
                found += member.plays.problems(getattr(instance, name), prefix=f"{prefix}{name}.")
        for name, signature in cls._methods.items():
            if inspect.getattr_static(instance, name, _ABSENT) is _ABSENT:
                found.append(f"lacks {prefix}{name}")
                continue
            method = getattr(instance, name)
            if not callable(method):
                found.append(f"has {prefix}{name}, which is not callable")
            elif not _takes(method, signature):
                found.append(f"has {prefix}{name}{_shown(method)}, which cannot be called as {name}{_stub(signature)}")
        return found


def _stub(signature: inspect.Signature) -> str:
    return str(signature.replace(parameters=[p for p in signature.parameters.values() if p.name != "self"]))


def _shown(method) -> str:
    try:
        return str(inspect.signature(method))
    except (TypeError, ValueError):
        return "(...)"


def _takes(method, signature: inspect.Signature) -> bool:
    """Whether ``method`` accepts every argument the role's stub names, passed as the stub passes them."""
    try:
        own = inspect.signature(method)
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return True
    args, kwargs = [], {}
    for p in list(signature.parameters.values())[1:]:  # after self
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            args.append(None)
        elif p.kind is p.KEYWORD_ONLY:
            kwargs[p.name] = None
    try:
        own.bind(*args, **kwargs)
    except TypeError:
        return False
    return True


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
    stream decoded by separate forwards: unbatched guidance)."""

    def twin(self): ...


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
    """Accuracy impact of lossy stacks: next-token logits (B, L, V) of whole sequences."""

    capability = "teacher-forcing"

    def teacher_forced_logits(self, input_ids): ...


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


class Quantizable(Role):
    """The linear layers of ``module`` may be quantized (torchao weight configs, autoquant)."""

    capability = "quantize"
    module = Member()


class AttentionSwitch(Role):
    """``eager`` attention (the baseline) or ``sdpa`` (and workload kernels)."""

    capability = "attention"

    def set_attention(self, impl): ...


class KVCacheSwitch(Role):
    """``dynamic`` (the baseline) or ``static`` KV cache."""

    capability = "kv-cache"

    def set_cache(self, kind): ...


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
    """Guidance over a token model's logits: an unconditional prompt per sample, a guidance scale, and
    the token forced after the last sampled one (``eoi``: Chameleon's end of image)."""

    capability = "token-guidance"
    model = Member(plays=TwinSteps)
    guidance_scale = Member()
    eoi = Member()

    def unconditional_prompt(self, sample): ...


class Denoiser(Guided):
    """Diffusion: the core's denoising loop (:func:`genaccel.diffusion.loop.denoise`) drives the
    workload's text encoder, denoiser and decoder over a ``diffusers`` scheduler.

    ``denoise_defaults``: scheduler, steps and guidance scale where the run gives none;
    ``scheduler_config``: the ``diffusers`` scheduler config; ``dtype``: the latents' dtype;
    ``executor``: the StepExecutor its compiled parts run through; ``units_per_sample``: 1 image, or
    the frames of a video; ``begin_step(index)``: the loop starts step ``index`` (0: a batch's first).
    """

    capability = "denoise"
    denoise_defaults = Member()
    scheduler_config = Member()
    dtype = Member()
    executor = Member()
    units_per_sample = Member()

    def encode_prompt(self, prompts): ...
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
                          StepCache, Compilable, CUDAGraphable)

ROLES: dict[str, type[Role]] = {
    cls.__name__: cls
    for cls in (Workload, TokenModel, BatchRunner, MediaCodec, PromptInput, TeacherForcing, WeightStreaming, EarlyExit,
                BeamSearch, TransformersReference, Quantizable, AttentionSwitch, KVCacheSwitch, Compilable,
                CUDAGraphable, ChannelsLast, FusedQKV, Guided, TokenGuidance, Denoiser, GuidedLoop, StepCache,
                PipelineReference)
}


def offers(declared, required: type[Role]) -> bool:
    """Whether roles ``declared`` offer ``required`` (it or a role derived from it)."""
    return any(issubclass(role, required) for role in declared)


def capabilities_of(roles) -> tuple[str, ...]:
    """The capability names of ``roles`` and of the roles they derive from, sorted."""
    return tuple(sorted({base.capability for role in roles for base in role.__mro__
                         if isinstance(base, type) and issubclass(base, Role) and base.capability}))


def check_roles(workload_name: str, roles, instance) -> None:
    """Every member of every declared role is on the built instance, callable as the role says."""
    if isinstance(instance, Role):
        raise GenaccelError(f"workload {workload_name}'s instance ({type(instance).__name__}) inherits role classes; "
                            "a workload declares its roles in its WorkloadSpec only")
    for role in dict.fromkeys((Workload, *roles)):
        problems = role.problems(instance)
        if problems:
            raise GenaccelError(f"workload {workload_name} declares role {role.__name__} but its instance "
                                f"({type(instance).__name__}) {'; '.join(problems)}")

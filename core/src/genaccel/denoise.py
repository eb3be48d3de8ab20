"""The denoising loop of text-to-image and text-to-video diffusion, over a ``diffusers`` scheduler.

:func:`denoise` is what the guidance decoders (``cfg``, ``cfg-sequential``) run for a workload
declaring the :class:`~genaccel.roles.Denoiser` role.  It follows ``diffusers``' pipelines step by
step, so that the same components, seed, scheduler and steps give the same images:

1. encode the prompts (phase ``text encoder``); with guidance also the empty prompt;
2. latents drawn from one CPU generator per sample (seeded by the sample), times the
   scheduler's initial noise sigma;
3. per step (phase ``denoise``, each step timed): ``scale_model_input`` → the denoiser's forward
   → classifier-free guidance ``u + s·(c − u)`` → ``scheduler.step``.  ``cfg`` runs the
   unconditional and conditional rows in one forward of batch 2B, ``cfg-sequential`` in two;
4. decode the latents (phase ``vae decode``) and save the outputs (untimed).

Settings come from ``ctx.config.options`` (``scheduler``, ``num_inference_steps``,
``guidance_scale``), each defaulting to the workload's ``denoise_defaults``.

:class:`LatentDiffusion` is the base of workloads built from ``diffusers`` parts (a CLIP text
encoder, a UNet, a VAE): it implements the Denoiser members and the switches the built-in
optimizations call.  :func:`attention_profile` is the study's characterization: the attention
sequence length at every attention call of one inference, and the time and FLOPs of each kind
of attention.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence

import attrs
import torch

from .decoding import BatchResult
from .errors import GenaccelError
from .executor import StepExecutor
from .layout import channels_last
from .measure import StepClock, synced_now
from .profiling import phase

SCHEDULERS = {
    "ddim": "DDIMScheduler",
    "pndm": "PNDMScheduler",
    "dpm-solver": "DPMSolverMultistepScheduler",
    "euler": "EulerDiscreteScheduler",
    "ddpm": "DDPMScheduler",  # ancestral sampling, the schedule DeepFloyd IF's stages ship with
}


@attrs.frozen(kw_only=True)
class PromptSample:
    """One text prompt of a diffusion workload; ``seed`` seeds its initial latents."""

    id: str
    prompt: str
    seed: int
    input_tokens: int = 0

    @property
    def input_lengths(self) -> dict[str, int]:
        return {"text": self.input_tokens}


@attrs.frozen(kw_only=True)
class Settings:
    scheduler: str
    num_inference_steps: int
    guidance_scale: float


def _options(ctx) -> dict:
    return ctx.config.options


def settings(ctx) -> Settings:
    """The run's scheduler, steps and guidance scale (the workload's defaults where not given), checked."""
    options, defaults = _options(ctx), ctx.instance.denoise_defaults

    def get(name, kind):
        value = options.get(name)
        if value is None:
            return defaults[name]
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise GenaccelError(f"--{name.replace('_', '-')} {value!r} is not a{'n int' if kind is int else ' number'}") from None

    name = get("scheduler", str)
    if name not in SCHEDULERS:
        raise GenaccelError(f"--scheduler {name!r} is not known; choose one of {', '.join(SCHEDULERS)}")
    steps = get("num_inference_steps", int)
    if steps < 1:
        raise GenaccelError(f"--num-inference-steps must be at least 1, got {steps}")
    scale = get("guidance_scale", float)
    if scale < 0:
        raise GenaccelError(f"--guidance-scale must be >= 0, got {scale}")
    return Settings(scheduler=name, num_inference_steps=steps, guidance_scale=scale)


def make_scheduler(name: str, config: dict):
    """A ``diffusers`` scheduler of kind ``name`` (``ddim``, ``pndm``, ``dpm-solver``, ``euler``,
    ``ddpm``) from a scheduler config (the training betas carry over, as with ``Scheduler.from_config``;
    PNDM without a word on PRK steps skips them)."""
    import diffusers

    if name not in SCHEDULERS:
        raise GenaccelError(f"--scheduler {name!r} is not known; choose one of {', '.join(SCHEDULERS)}")
    overrides = {}
    if name == "pndm" and "skip_prk_steps" not in config:  # PLMS only, as every Stable Diffusion pipeline
        overrides["skip_prk_steps"] = True
    return getattr(diffusers, SCHEDULERS[name]).from_config(config, **overrides)


def _step_kwargs(scheduler, generators) -> dict:
    """What ``diffusers``' pipelines pass to ``scheduler.step`` (``eta`` 0 for DDIM, the generators)."""
    params = inspect.signature(scheduler.step).parameters
    kwargs = {}
    if "eta" in params:
        kwargs["eta"] = 0.0
    if "generator" in params:
        kwargs["generator"] = generators
    return kwargs


@torch.no_grad()
def denoise(ctx, batch: Sequence[PromptSample], sequential: bool) -> BatchResult:
    """Text → latents → media for one batch, with classifier-free guidance when its scale is > 1."""
    from diffusers.utils.torch_utils import randn_tensor

    inst, dev = ctx.instance, ctx.device
    s = settings(ctx)
    guided = s.guidance_scale > 1.0  # as diffusers' pipelines: no unconditional pass at scale <= 1
    bsz = len(batch)
    generators = [torch.Generator().manual_seed(sample.seed) for sample in batch]
    inst.executor.new_batch()

    t0 = synced_now(dev)
    with phase("text encoder"):
        cond = inst.encode_prompt([sample.prompt for sample in batch])
        uncond = inst.encode_prompt([""] * bsz) if guided else None
    t1 = synced_now(dev)
    scheduler = make_scheduler(s.scheduler, inst.scheduler_config)
    scheduler.set_timesteps(s.num_inference_steps, device=dev)
    latents = randn_tensor(inst.latent_shape(bsz), generator=generators, device=torch.device(dev), dtype=inst.dtype)
    latents = latents * scheduler.init_noise_sigma
    extra = _step_kwargs(scheduler, generators)
    both = torch.cat([uncond, cond]) if guided and not sequential else None
    clock = StepClock(dev)
    clock.start()
    begin_step = getattr(inst, "begin_step", None)  # a step cache numbers the steps
    for i, t in enumerate(scheduler.timesteps):
        if begin_step is not None:
            begin_step(i)
        with phase("denoise"):
            if not guided:
                noise = inst.predict_noise(scheduler.scale_model_input(latents, t), t, cond)
            elif sequential:
                x = scheduler.scale_model_input(latents, t)
                u, c = inst.predict_noise(x, t, uncond), inst.predict_noise(x, t, cond)
                noise = u + s.guidance_scale * (c - u)
            else:
                x = scheduler.scale_model_input(torch.cat([latents] * 2), t)
                u, c = inst.predict_noise(x, t, both).chunk(2)
                noise = u + s.guidance_scale * (c - u)
            latents = scheduler.step(noise, t, latents, **extra, return_dict=False)[0]
        clock.mark()
    step_times = clock.seconds()
    steps = len(step_times)  # denoiser passes: PNDM's PLMS takes one more than the steps asked for
    t2 = synced_now(dev)
    with phase("vae decode"):
        media = inst.decode_latents(latents)
    t3 = synced_now(dev)
    out_dir = ctx.config.out_dir
    files = inst.save_outputs(batch, media, out_dir)

    phases = {"text encoder": t1 - t0, "denoise": t2 - t1, "vae decode": t3 - t2}
    latency = t3 - t0
    records = [
        {
            "id": sample.id,
            "input_tokens": sample.input_tokens,
            "output_tokens": 0,
            "latency_s": latency,
            "ttft_s": None,
            "tpot_s": None,
            "steps": steps,
            "units": inst.units_per_sample,
            "phases": dict(phases),
            **extra_fields,
        }
        for sample, extra_fields in zip(batch, files)
    ]
    return BatchResult(
        records=records,
        outputs=[[] for _ in batch],
        latency_s=latency,
        prefill_s=phases["text encoder"],
        decode_s=phases["denoise"],
        decode_steps=steps,
        weight_passes=2 if guided and sequential else 1,
        step_s=[b - a for a, b in zip([0.0, *step_times], step_times)],
        phases=phases,
        extra={"denoise": {**attrs.asdict(s), "batched": not sequential, "guided": guided}, "media": media},
    )


# --- workloads built from diffusers parts --------------------------------------------------------


def clip_style_tokenizer(vocab_size: int, max_length: int = 77, name: str = "clip"):
    """A byte-level BPE tokenizer trained offline (``train_bpe_tokenizer``) with CLIP's framing:
    ``<|startoftext|>`` … ``<|endoftext|>``, padded with ``<|endoftext|>`` to ``max_length``."""
    from tokenizers.processors import TemplateProcessing

    from .workload import train_bpe_tokenizer

    bos, eos = "<|startoftext|>", "<|endoftext|>"
    tok = train_bpe_tokenizer(vocab_size, special_tokens=[bos, eos], name=name)
    tok._tokenizer.post_processor = TemplateProcessing(single=f"{bos} $A {eos}", special_tokens=[(bos, 0), (eos, 1)])
    tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token = bos, eos, eos, eos
    tok.model_max_length = max_length
    return tok


def materialize(module, device: str, dtype, seed: int):
    """A module built on the meta device, on ``device`` with reproducible random weights."""
    from .workload import init_random_weights

    module = module.to_empty(device=device)
    init_random_weights(module, seed=seed)
    for buf_owner in module.modules():  # buffers (position ids) are not restored by to_empty
        for name, buf in buf_owner.named_buffers(recurse=False):
            if name == "position_ids":
                buf.copy_(torch.arange(buf.shape[-1], device=device).expand_as(buf))
    return _to(module, device, dtype)


def _to(module, device: str, dtype):
    module = module.to(device)
    return module if dtype == torch.float32 else module.to(dtype)


def load_pipeline_folder(path, unet_class, *, device: str, dtype) -> dict:
    """The parts of a local ``diffusers`` pipeline folder (``model_index.json``, ``text_encoder``,
    ``tokenizer``, ``unet``, ``vae``, ``scheduler``), each checked; errors name the folder."""
    import json
    from pathlib import Path

    from diffusers import AutoencoderKL
    from transformers import AutoTokenizer, CLIPTextModel

    path = Path(path)
    if not (path / "model_index.json").is_file():
        raise GenaccelError(f"checkpoint {str(path)!r} has no model_index.json; pass a diffusers pipeline folder")
    missing = [d for d in ("text_encoder", "tokenizer", "unet", "vae", "scheduler") if not (path / d).is_dir()]
    if missing:
        raise GenaccelError(f"checkpoint {str(path)!r} lacks the folder(s) {', '.join(missing)}")
    parts = {}
    for name, folder, load in (
        ("tokenizer", "tokenizer", AutoTokenizer.from_pretrained),
        ("text_encoder", "text_encoder", lambda p: CLIPTextModel.from_pretrained(p, dtype=dtype)),
        ("unet", "unet", lambda p: unet_class.from_pretrained(p, torch_dtype=dtype)),
        ("vae", "vae", lambda p: AutoencoderKL.from_pretrained(p, torch_dtype=dtype)),
        ("scheduler_config", "scheduler", lambda p: json.loads((p / "scheduler_config.json").read_text())),
    ):
        try:
            parts[name] = load(path / folder)
        except Exception as e:  # noqa: BLE001 - any failure here is a broken folder
            raise GenaccelError(f"checkpoint {str(path)!r}: cannot load its {name} ({type(e).__name__}: {e})") from None
    for name in ("text_encoder", "unet", "vae"):
        parts[name] = parts[name].to(device)
    return parts


def scheduler_name(config: dict, default: str) -> str:
    """Our name of a scheduler config's class (``PNDMScheduler`` → ``pndm``), else ``default``."""
    return {cls: name for name, cls in SCHEDULERS.items()}.get(config.get("_class_name"), default)


def part_configs(preset: dict) -> tuple:
    """The configs of a preset's text encoder (``CLIPTextConfig``), UNet and VAE (``AutoencoderKL``
    keyword arguments) from its ``text``, ``unet``, ``vae`` and ``image_size`` fields."""
    from transformers import CLIPTextConfig

    p = preset
    text = CLIPTextConfig(**p["text"], max_position_embeddings=77, hidden_act=p.get("text_act", "quick_gelu"),
                          projection_dim=p["text"]["hidden_size"], bos_token_id=0, eos_token_id=1, pad_token_id=1)
    unet = {**p["unet"], "sample_size": p["image_size"] // 8, "in_channels": 4, "out_channels": 4}
    vae = {**p["vae"], "latent_channels": 4, "sample_size": p["image_size"],
           "down_block_types": ("DownEncoderBlock2D",) * len(p["vae"]["block_out_channels"]),
           "up_block_types": ("UpDecoderBlock2D",) * len(p["vae"]["block_out_channels"])}
    return text, unet, vae


def build_parts(preset: dict, *, device: str, dtype, seed: int, unet_class) -> dict:
    """Tokenizer, text encoder (CLIP), UNet (``unet_class``) and VAE (``AutoencoderKL``) of a preset
    (:func:`part_configs`), with random weights.  Presets marked ``meta`` are built on the meta
    device and materialized on ``device``."""
    from diffusers import AutoencoderKL
    from transformers import CLIPTextModel

    text, unet_cfg, vae_cfg = part_configs(preset)
    tokenizer = clip_style_tokenizer(preset["text"]["vocab_size"])
    if preset.get("meta"):
        with torch.device("meta"):
            parts = [CLIPTextModel(text), unet_class(**unet_cfg), AutoencoderKL(**vae_cfg)]
        parts = [materialize(m, device, dtype, seed + i) for i, m in enumerate(parts)]
    else:
        torch.manual_seed(seed)
        parts = [_to(m, device, dtype) for m in (CLIPTextModel(text), unet_class(**unet_cfg), AutoencoderKL(**vae_cfg))]
    text_encoder, unet, vae = parts
    return {"tokenizer": tokenizer, "text_encoder": text_encoder, "unet": unet, "vae": vae}


PROMPTS = (
    "A photograph of an astronaut riding a horse on the moon.",
    "A red fox sitting in a snowy forest at dawn, highly detailed.",
    "An oil painting of a lighthouse on a cliff during a storm.",
    "A bowl of ramen with a soft-boiled egg, studio lighting.",
    "A futuristic city skyline at night with flying cars.",
    "A watercolor of a cat sleeping on a stack of books.",
    "A close-up of a hummingbird drinking from a purple flower.",
    "A cozy cabin in the mountains with smoke rising from the chimney.",
    "A vintage car parked on a cobblestone street in Paris.",
    "A panda eating bamboo in a misty bamboo forest.",
    "A sailboat on a calm lake reflecting the sunset.",
    "A steampunk robot playing the violin on a stage.",
)


def prompt_samples(tokenizer, data, n: int, seed: int) -> list[PromptSample]:
    """``n`` prompts of a text-to-image or text-to-video workload: the built-in ones, or one per line
    of the ``--data`` folder's *.txt files; sample ``i`` seeds its latents with ``seed * 100003 + i``."""
    prompts = list(PROMPTS)
    if data is not None:
        from pathlib import Path

        from .files import read_text

        files = sorted(Path(data).glob("*.txt"))
        prompts = [line.strip() for f in files for line in read_text(f, "prompt file").splitlines() if line.strip()]
        if not prompts:
            raise GenaccelError(f"--data {str(data)!r} holds no prompts (*.txt files, one prompt per line)")
    picked = [prompts[(seed + i) % len(prompts)] for i in range(n)]
    return [PromptSample(id=str(i), prompt=p, seed=seed * 100_003 + i, input_tokens=len(tokenizer(p).input_ids))
            for i, p in enumerate(picked)]


def prompt_sample(tokenizer, text: str) -> PromptSample:
    """The prompt of ``genaccel generate``."""
    return PromptSample(id="0", prompt=text, seed=0, input_tokens=len(tokenizer(text).input_ids))

def save_images(batch, images, out_dir) -> list[dict]:
    """Each sample's image (H, W, 3) in [0, 1] as a PNG in ``out_dir/images`` (when given); per-sample
    record fields: its size and the files written."""
    from pathlib import Path

    from PIL import Image

    extras = []
    for sample, image in zip(batch, images):
        extra = {"image_size": list(image.shape[:2])}
        if out_dir:
            folder = Path(out_dir) / "images"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / (sample.id.replace("/", "-") + ".png")
            Image.fromarray((image.numpy() * 255).round().astype("uint8")).save(path)
            extra["files"] = [str(path)]
        extras.append(extra)
    return extras


class LatentDiffusion:
    """Base of diffusion workloads made of ``diffusers``/``transformers`` parts: ``tokenizer``,
    ``text_encoder`` (CLIP), ``unet`` (2-D or 3-D) and ``vae`` (``AutoencoderKL``).

    Subclasses set ``latent_shape``, ``decode_latents``, ``save_outputs`` and ``units_per_sample``.
    """

    def __init__(self, *, tokenizer, text_encoder, unet, vae, scheduler_config: dict, denoise_defaults: dict,
                 device: str, dtype, random_weights: bool, name: str, data=None):
        self.tokenizer, self.text_encoder, self.unet, self.vae = tokenizer, text_encoder, unet, vae
        self.scheduler_config, self.denoise_defaults = dict(scheduler_config), dict(denoise_defaults)
        self.device, self.dtype, self.random_weights, self.name, self.data = device, dtype, random_weights, name, data
        self.module = torch.nn.ModuleDict({"text_encoder": text_encoder, "unet": unet, "vae": vae}).eval()
        self.executor = StepExecutor(device)
        self.attention, self.fused_qkv, self.channels_last, self.compile_mode = "eager", False, False, None
        self.cache_interval = None  # the step cache (deepcache): full UNet every N-th step
        self._step, self._call, self._deep = 0, 0, {}
        self.set_attention("eager")  # the baseline is diffusers' plain AttnProcessor (matmul, softmax, matmul)

    # -- Workload
    def make_samples(self, n: int, seed: int, max_new_tokens=None, seq_len=None) -> list[PromptSample]:
        return prompt_samples(self.tokenizer, self.data, n, seed)

    def prompt_sample(self, text: str, max_new_tokens=None, options=None) -> PromptSample:
        return prompt_sample(self.tokenizer, text)

    def describe(self) -> dict:
        def count(m):
            return sum(p.numel() for p in m.parameters())

        return {"name": self.name, "parameters": count(self.module), "text_encoder_parameters": count(self.text_encoder),
                "unet_parameters": count(self.unet), "vae_parameters": count(self.vae), "latent_shape": self.latent_shape(1),
                "attention": self.attention, "executor": self.executor.mode, **self.denoise_defaults}

    # -- Denoiser
    def encode_prompt(self, prompts: list[str]) -> torch.Tensor:
        """As ``diffusers``' ``encode_prompt``: padded to the tokenizer's max length, last hidden state."""
        ids = self.tokenizer(prompts, padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids.to(self.device)
        mask = None
        if getattr(self.text_encoder.config, "use_attention_mask", False):
            mask = (ids != self.tokenizer.pad_token_id).long()
        return self.text_encoder(ids, attention_mask=mask)[0].to(self.dtype)

    def predict_noise(self, latents: torch.Tensor, t, embeddings: torch.Tensor) -> torch.Tensor:
        if self.channels_last and latents.dim() == 4:
            latents = latents.contiguous(memory_format=torch.channels_last)
        if self.cache_interval is None:
            return self.executor.run("unet", self._unet_forward, latents, t, embeddings)
        return self._cached_forward(latents, t, embeddings)

    def begin_step(self, index: int) -> None:
        """The denoising loop starts step ``index`` (0 for a batch's first)."""
        self._step, self._call = index, 0
        if index == 0:
            self._deep = {}

    def _cached_forward(self, latents, t, embeddings):
        """The step cache: the whole UNet every ``cache_interval``-th step, keeping its deep feature
        per forward of the step (cfg-sequential makes two); the shallow path on it in between."""
        call, self._call = self._call, self._call + 1
        deep = self._deep.get(call)
        if self._step % self.cache_interval == 0 or deep is None or deep.shape[0] != latents.shape[0] * (
                latents.shape[2] if latents.dim() == 5 else 1):
            noise, deep = self.executor.run("unet-full", self._full_forward, latents, t, embeddings)
            self._deep[call] = deep.clone()  # a CUDA graph's output buffer is rewritten by its next replay
            return noise
        return self.executor.run("unet-shallow", self._shallow_forward, latents, t, embeddings, deep)

    def _full_forward(self, latents, t, embeddings):
        from .stepcache import full

        return full(self.unet, latents, t, embeddings)

    def _shallow_forward(self, latents, t, embeddings, deep):
        from .stepcache import shallow

        return shallow(self.unet, latents, t, embeddings, deep)

    def set_step_cache(self, interval: int) -> str:
        if interval < 1:
            raise GenaccelError(f"--cache-interval must be at least 1, got {interval}")
        self.cache_interval = interval
        return (f"step cache (DeepCache): the whole UNet every {interval} steps, the steps between run only "
                "conv_in, the first down-block and the last up-block on the cached deep feature")

    def _unet_forward(self, latents, t, embeddings):
        return self.unet(latents, t, encoder_hidden_states=embeddings, return_dict=False)[0]

    def vae_decode(self, latents: torch.Tensor) -> torch.Tensor:
        """VAE decode of (N, C, h, w) latents already divided by the scaling factor."""
        if self.channels_last:
            latents = latents.contiguous(memory_format=torch.channels_last)
        return self.executor.run("vae", self._vae_forward, latents)

    def _vae_forward(self, latents):
        return self.vae.decode(latents, return_dict=False)[0]

    # -- switches the optimizations call
    def set_attention(self, impl: str) -> None:
        from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0, FusedAttnProcessor2_0

        if impl not in ("eager", "sdpa"):
            raise GenaccelError(f"attention {impl!r} is not offered by {self.name}; use eager or sdpa")
        if impl == "eager" and self.fused_qkv:
            raise GenaccelError("fused-qkv attends through SDPA; add sdpa to the stack")
        processor = {"eager": AttnProcessor, "sdpa": FusedAttnProcessor2_0 if self.fused_qkv else AttnProcessor2_0}[impl]
        for part in (self.unet, self.vae):
            part.set_attn_processor(processor())
        self.text_encoder.set_attn_implementation(impl)
        self.attention = impl

    def fuse_qkv(self) -> str:
        self.fused_qkv = True
        for part in (self.unet, self.vae):
            part.fuse_qkv_projections()  # fused processors attend through SDPA
        self.attention = "sdpa"
        return "query, key and value projections fused into one linear (key and value for cross-attention)"

    def set_channels_last(self) -> str:
        self.channels_last = True
        n = channels_last((self.unet, self.vae))
        return f"{n} Conv2d weights and the 4-D latents in channels-last (NHWC) layout"

    def set_compile(self, mode: str) -> str:
        self.compile_mode = mode
        self.executor.configure(compile=mode, fullgraph=True, dynamic=False)
        return f"UNet and VAE decode compiled through the step executor (mode={mode}, fullgraph, static shapes)"

    def set_cuda_graph(self) -> str:
        self.executor.configure(compile=self.compile_mode, cuda_graph=True)
        return "UNet and VAE decode replayed from CUDA graphs per shape (step executor)"


# --- characterization: attention over one inference ----------------------------------------------


def attention_profile(instance, prompt: str = PROMPTS[0], *, steps: int = 2, guidance_scale: float | None = None,
                      scheduler: str | None = None) -> dict:
    """The study's attention characterization of one inference of a :class:`LatentDiffusion` workload.

    Forward hooks on every ``diffusers`` ``Attention`` module record, per call, the denoising step
    (``vae`` for the decode), the module's name, its kind (``spatial`` self-attention over a frame's
    positions, ``temporal`` over the frames in a UNet3D's temporal transformers, ``cross`` to the
    text, ``vae``), its query and key lengths, its FLOPs (``4·B·Lq·Lk·d``
    for QKᵀ and AV) and its seconds.  Returns the calls and a summary: the per-step profile of
    query lengths over the UNet's blocks (U-shaped: down, mid, up), the max/min sequence length
    ratio, and the seconds and FLOPs of each kind.
    """
    from diffusers.models.attention_processor import Attention

    from .runner import RunConfig, RunContext

    calls, state = [], {"step": -1}
    starts = {}
    temporal = [f"unet.{n}." for n, m in instance.unet.named_modules() if "Temporal" in type(m).__name__]

    def kind_of(name: str, module) -> str:
        if name.startswith("vae."):
            return "vae"
        if module.is_cross_attention:
            return "cross"
        return "temporal" if any(name.startswith(t) for t in temporal) else "spatial"

    def pre(name):
        def hook(module, args, kwargs):
            starts[name] = synced_now(instance.device)
        return hook

    def post(name):
        def hook(module, args, kwargs, output):
            seconds = synced_now(instance.device) - starts.pop(name)
            hidden = args[0] if args else kwargs["hidden_states"]
            context = kwargs.get("encoder_hidden_states")
            if hidden.dim() == 4:  # (B, C, H, W) inside the VAE's mid block
                b, _, h, w = hidden.shape
                lq = h * w
            else:
                b, lq = hidden.shape[:2]
            lk = context.shape[1] if context is not None else lq
            dim = module.inner_dim
            calls.append({"step": state["step"], "module": name, "kind": kind_of(name, module), "query_len": lq,
                          "key_len": lk, "batch": b, "flops": 4 * b * lq * lk * dim, "seconds": seconds})
        return hook

    handles = []
    for part_name, part in (("unet", instance.unet), ("vae", instance.vae)):
        for name, module in part.named_modules():
            if isinstance(module, Attention):
                full = f"{part_name}.{name}"
                handles.append(module.register_forward_pre_hook(pre(full), with_kwargs=True))
                handles.append(module.register_forward_hook(post(full), with_kwargs=True))

    class _Counting:  # numbers the steps from the denoiser's forwards
        def __init__(self, inner):
            self._inner = inner

        def __getattr__(self, name):
            return getattr(self._inner, name)

        def predict_noise(self, *args):
            state["step"] += 1
            return self._inner.predict_noise(*args)

        def decode_latents(self, latents):
            state["step"] = "vae"
            return self._inner.decode_latents(latents)

    options = {"num_inference_steps": steps, "guidance_scale": guidance_scale, "scheduler": scheduler}
    config = RunConfig(workload=instance.name)
    config = _with_options(config, options)
    ctx = RunContext(config=config, workload=None, instance=_Counting(instance), stack=None)
    sample = instance.prompt_sample(prompt)
    try:
        t0 = time.perf_counter()
        denoise(ctx, [sample], sequential=False)  # one denoiser forward (of 2 rows with guidance) per step
        total = time.perf_counter() - t0
    finally:
        for h in handles:
            h.remove()
    unet_calls = [c for c in calls if c["module"].startswith("unet.") and c["step"] == 0]
    self_lens = [c["query_len"] for c in calls if c["kind"] == "spatial"]
    kinds = {}
    for c in calls:
        k = kinds.setdefault(c["kind"], {"calls": 0, "seconds": 0.0, "flops": 0})
        k["calls"] += 1
        k["seconds"] += c["seconds"]
        k["flops"] += c["flops"]
    summary = {
        "profile": [(c["module"], c["kind"], c["query_len"]) for c in unet_calls],
        "max_seq_len": max(self_lens),
        "min_seq_len": min(self_lens),
        "seq_len_ratio": max(self_lens) / min(self_lens),
        "kinds": kinds,
        "inference_s": total,
    }
    if "temporal" in kinds and "spatial" in kinds:
        t, sp = kinds["temporal"], kinds["spatial"]
        summary["temporal_over_spatial_seconds"] = t["seconds"] / sp["seconds"]
        summary["temporal_over_spatial_flops"] = t["flops"] / sp["flops"]
    return {"calls": calls, "summary": summary}


def _with_options(config, options: dict):
    given = {k: v for k, v in options.items() if v is not None}
    return attrs.evolve(config, options=given)

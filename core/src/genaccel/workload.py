"""What a workload's ``build`` returns, and helpers plugins share (inputs, lengths, tokenizers).

A workload instance plays the roles its spec declares (:mod:`genaccel.roles`): every workload
has ``module``, ``random_weights``, ``make_samples`` and ``describe``; a token model adds
``model`` (the step protocol of :class:`genaccel.hf.HFCausalLM`), ``eos_token_id``,
``pad_token_id``, ``encode`` and ``decode``; each further role the members it names.  The
members are checked when the workload is built.
"""

from __future__ import annotations

import math
import random
import sysconfig
from pathlib import Path

import attrs

from .errors import GenaccelError, cannot_load, first_line
from .files import cache_dir, read_json_object, warn
from .hf import SDPA_FLEX_DECODE
from .roles import AttentionSwitch, Compilable, CUDAGraphable, KVCacheSwitch, TokenModel, WeightStreaming


@attrs.frozen(kw_only=True)
class BuildOptions:
    """How to build a workload instance."""

    preset: str | None = None
    checkpoint: Path | None = attrs.field(default=None, converter=attrs.converters.optional(Path))
    device: str = attrs.field(default="cpu", validator=attrs.validators.matches_re(r"(cpu|cuda)(:[0-9]+)?"))  # cuda:1 too
    dtype: str = attrs.field(default="float32", validator=attrs.validators.in_(("float32", "bfloat16", "float16")))
    seed: int = 0
    data: Path | None = attrs.field(default=None, converter=attrs.converters.optional(Path))
    options: dict = attrs.field(factory=dict, converter=dict, hash=False)  # the workload's own (WorkloadSpec.options)
    out_dir: Path | None = attrs.field(default=None, converter=attrs.converters.optional(Path))  # files it writes

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)


@attrs.frozen(kw_only=True)
class TextSample:
    """One prompt for an autoregressive text decoder."""

    id: str
    input_ids: tuple[int, ...] = attrs.field(converter=tuple)
    max_new_tokens: int = attrs.field(validator=attrs.validators.ge(1))

    @input_ids.validator
    def _nonempty(self, attribute, value):
        if not value:
            raise GenaccelError(f"sample {self.id!r}: the prompt is empty; give at least one token of text")

    @property
    def input_lengths(self) -> dict[str, int]:
        return {"text": len(self.input_ids)}


@attrs.frozen(kw_only=True)
class LengthDistribution:
    """A truncated log-normal over integers with a given min, max and mean.

    Fitted to the three figures the paper's Table II gives for each data set.
    """

    min: int
    max: int
    mean: float
    sigma: float = 0.8

    def __attrs_post_init__(self):
        if not self.min <= self.mean <= self.max:
            raise ValueError(f"mean {self.mean} must lie in [{self.min}, {self.max}]")

    def _truncated_mean(self, mu: float) -> float:
        # Mean of exp(N(mu, sigma)) truncated to [min, max], by the closed form.
        def phi(x):
            return 0.5 * (1 + math.erf(x / math.sqrt(2)))

        s, lo, hi = self.sigma, math.log(self.min), math.log(self.max)
        a, b = (lo - mu) / s, (hi - mu) / s
        mass = phi(b) - phi(a)
        if mass <= 1e-12:
            return self.min if mu < lo else self.max
        return math.exp(mu + s * s / 2) * (phi(b - s) - phi(a - s)) / mass

    @property
    def mu(self) -> float:
        lo, hi = math.log(self.min) - 5, math.log(self.max) + 5
        for _ in range(100):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if self._truncated_mean(mid) < self.mean else (lo, mid)
        return (lo + hi) / 2

    def sample(self, n: int, rng: random.Random) -> list[int]:
        mu, out = self.mu, []
        while len(out) < n:
            x = math.exp(rng.gauss(mu, self.sigma))
            if self.min <= x <= self.max:
                out.append(int(round(x)))
        return out


# --- text corpora and tokenizers built offline --------------------------------------------------


def code_corpus(max_bytes: int = 8_000_000) -> list[str]:
    """Python source text from the standard library, in a fixed order (no download needed)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    texts, total = [], 0
    for path in sorted(root.rglob("*.py")):
        if "test" in path.parts or "site-packages" in path.parts:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        texts.append(text)
        total += len(text)
        if total >= max_bytes:
            break
    return texts


def train_bpe_tokenizer(
    vocab_size: int, *, special_tokens: list[str], name: str = "code", corpus=None, max_bytes: int = 8_000_000
):
    """A byte-level BPE tokenizer trained on local text, cached under ``cache_dir()``.

    Returns a ``transformers.PreTrainedTokenizerFast`` whose first special tokens are
    ``special_tokens`` (ids 0, 1, ...), so it saves and loads like a checkpoint's tokenizer.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    path = cache_dir() / "tokenizers" / f"{name}-bpe-{vocab_size}.json"
    tok = None
    if path.exists():
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as e:  # noqa: BLE001 - any failure to parse is a corrupt cache entry
            warn(f"the cached tokenizer {str(path)!r} is corrupt ({first_line(e, 120)}); training it again")
            path.unlink(missing_ok=True)
    if tok is None:
        tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=special_tokens,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(corpus if corpus is not None else code_corpus(max_bytes), trainer=trainer)
        from .files import write_text

        write_text(path, tok.to_str())
    return PreTrainedTokenizerFast(tokenizer_object=tok)


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model", "sentencepiece.bpe.model")


def check_checkpoint_dir(path: Path, *, model_types: tuple[str, ...]) -> dict:
    """Validate a local Hugging Face checkpoint directory; returns its config as a dict."""
    path = Path(path)
    if not path.exists():
        raise GenaccelError(f"checkpoint directory {str(path)!r} does not exist")
    if not path.is_dir():
        raise GenaccelError(f"checkpoint {str(path)!r} is not a directory; pass the folder holding config.json")
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise GenaccelError(f"checkpoint directory {str(path)!r} has no config.json; is it a Hugging Face model folder?")
    cfg = read_json_object(cfg_path, "checkpoint config")
    if cfg.get("model_type") not in model_types:
        raise GenaccelError(
            f"checkpoint {str(path)!r} holds model_type {cfg.get('model_type')!r}; this workload needs "
            f"{' or '.join(model_types)}"
        )
    weights = [*path.glob("*.safetensors"), *path.glob("pytorch_model*.bin")]
    if not weights:
        raise GenaccelError(f"checkpoint directory {str(path)!r} has no *.safetensors or pytorch_model*.bin weights")
    return cfg


def check_tokenizer_files(path: Path) -> None:
    """A clear error for a checkpoint folder without tokenizer files (transformers blames sentencepiece)."""
    if not any((Path(path) / name).is_file() for name in TOKENIZER_FILES):
        raise GenaccelError(f"checkpoint {str(path)!r} has no tokenizer: none of {', '.join(TOKENIZER_FILES)}; copy "
                            "the tokenizer files of the model's release into it")


def check_loading_info(path: Path, info: dict, *, allow_missing: bool = False) -> list[str]:
    """Missing weights are an error (the model would run on random ones) unless allowed; unexpected
    ones a warning.  Returns the missing names."""
    missing = sorted(info.get("missing_keys") or ())
    unexpected = sorted(info.get("unexpected_keys") or ())
    mismatched = [str(m[0]) if isinstance(m, (tuple, list)) else str(m) for m in info.get("mismatched_keys") or ()]
    if mismatched:
        raise GenaccelError(f"checkpoint {str(path)!r}: {len(mismatched)} weights have the wrong shape for its "
                            f"config.json ({_some(mismatched)}); the weights and config.json do not belong together")
    if missing and not allow_missing:
        raise GenaccelError(f"checkpoint {str(path)!r} lacks {len(missing)} weights ({_some(missing)}); the model "
                            "would run on random ones. Give a complete checkpoint, or allow it with "
                            "--allow-missing-weights")
    if missing:
        warn(f"checkpoint {str(path)!r} lacks {len(missing)} weights ({_some(missing)}); they are random")
    if unexpected:
        warn(f"checkpoint {str(path)!r} holds {len(unexpected)} weights the model does not use ({_some(unexpected)})")
    return missing


def weights_description(module, random_weights: bool) -> dict:
    """``describe()``'s weight fields: ``random_weights`` True (a preset), False (a checkpoint, every
    weight loaded) or ``"partial"`` (a checkpoint run with --allow-missing-weights that lacks some),
    and ``missing_weights``, the names of those left random."""
    missing = list(getattr(module, "genaccel_missing_weights", None) or ())
    return {"random_weights": "partial" if missing and not random_weights else random_weights,
            "missing_weights": missing}


def _some(names: list[str], n: int = 4) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def load_hf_checkpoint(options: BuildOptions, model_class, *, model_types: tuple[str, ...], shard=None):
    """A checked local Hugging Face folder's model (``model_class``, in the run's dtype, on its
    device) and tokenizer; any failure is a clear error naming the folder.  Missing weights are an
    error unless the workload option ``allow_missing_weights`` is true; the model then carries their
    names in ``genaccel_missing_weights``.

    ``shard`` (:func:`genaccel.distributed.shard_causal_lm`) splits the model between the ranks of
    a tensor-parallel group: the model is then built on the meta device, sharded, and each rank
    reads only its own slices of the safetensors files (:func:`genaccel.distributed.load_shards`);
    a checkpoint of ``.bin`` files is loaded whole and then sharded."""
    from transformers import AutoTokenizer

    from . import distributed

    path = options.checkpoint
    check_checkpoint_dir(path, model_types=model_types)
    check_tokenizer_files(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except Exception as e:  # noqa: BLE001 - any failure here is a broken directory
        raise cannot_load(path, "its tokenizer", e) from None
    allow = str(options.options.get("allow_missing_weights", "")).lower() in ("1", "true", "yes")
    if shard is not None and distributed.active() and any(Path(path).glob("*.safetensors")):
        return _load_shards(options, model_class, shard, allow), tokenizer
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its load report is replaced by check_loading_info's line
    try:
        hf, info = model_class.from_pretrained(path, dtype=options.torch_dtype, output_loading_info=True)
    except Exception as e:  # noqa: BLE001
        raise cannot_load(path, "the model", e) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    hf.genaccel_missing_weights = check_loading_info(path, info, allow_missing=allow)
    if shard is not None:
        shard(hf)
    return hf.to(options.device), tokenizer


def _load_shards(options: BuildOptions, model_class, shard, allow_missing: bool):
    """This rank's shard of a checkpoint's model: built on meta, sharded, filled from its files."""
    import torch
    from transformers import GenerationConfig

    from .distributed import load_shards

    path = options.checkpoint
    try:
        config = model_class.config_class.from_pretrained(path)
        generation = (GenerationConfig.from_pretrained(path) if (Path(path) / "generation_config.json").is_file()
                      else None)
    except Exception as e:  # noqa: BLE001
        raise cannot_load(path, "its config", e) from None
    with torch.device("meta"):
        hf = model_class(config).to(options.torch_dtype)
    shard(hf)
    load_shards(hf, path, options.device, allow_missing=allow_missing)
    if getattr(hf.model, "rotary_emb", None) is not None:  # buffers are not in the files
        hf.model.rotary_emb = type(hf.model.rotary_emb)(config=config).to(options.device)
    if generation is not None:
        hf.generation_config = generation
    return hf


class CausalLMWorkload(TokenModel, WeightStreaming, AttentionSwitch, KVCacheSwitch, Compilable, CUDAGraphable):
    """Base for autoregressive text workloads whose ``model`` is a :class:`genaccel.hf.HFCausalLM`.

    It turns the role methods the built-in optimizations call into the model's settings.
    """

    bos_token_id: int | None = None  # prepended by ``encode`` when set

    def set_attention(self, impl: str) -> None:
        self.model.set_attention(impl)

    def set_cache(self, kind: str) -> None:
        self.model.set_cache(kind)

    def set_compile(self, mode: str) -> str:
        switched = self.model.set_compile(mode)
        if self.model.cache_kind == "static":
            note = (f"decode step compiled (mode={mode}, fullgraph, static shapes but the number of cached positions "
                    "read, which is symbolic: one graph); prefill runs eager")
        else:
            note = f"decode step compiled (mode={mode}, dynamic shapes: the cache grows); prefill runs eager"
        if switched:
            note += f"; {switched} linear layers emit a fused multiply-reduce GEMV for <= 8 rows (CPU)"
        if self.model.attention == SDPA_FLEX_DECODE:
            note += "; one-token attention through flex_attention (Inductor's CPU kernel), SDPA elsewhere"
        return note

    def set_cuda_graph(self) -> str:
        self.model.set_cuda_graph(True)
        if self.model.compile_mode:
            return "decode step captured by torch.compile's CUDA graph trees (reduce-overhead)"
        return "eager decode step captured in a CUDA graph per batch shape and replayed"

    def weight_bytes_per_step(self) -> int:
        return self.model.weight_bytes_per_step()

    def kv_bytes_per_token(self) -> int:
        return self.model.kv_bytes_per_token()

    def encode(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        return ([self.bos_token_id] if self.bos_token_id is not None else []) + ids

    def decode(self, ids) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)


def init_random_weights(module, *, seed: int, std: float = 0.02) -> None:
    """Fill a model materialized with ``to_empty`` with reproducible random weights.

    One generator walks the parameters in module order, so the same seed and architecture
    always give the same weights.  Norm scales are ones and their shifts zeros; other weights
    ~ N(0, std), drawn in float32 whatever the model's dtype (a bfloat16 model holds its float32
    twin's weights, rounded); biases zero.
    """
    import torch

    from .distributed import fill_shard

    first = next(module.parameters())
    gen = torch.Generator(device=first.device).manual_seed(seed)
    with torch.no_grad():
        for sub in module.modules():
            is_norm = "norm" in type(sub).__name__.lower()
            for name, param in sub.named_parameters(recurse=False):
                if is_norm:
                    param.fill_(1.0 if name == "weight" else 0.0)
                elif name == "bias":
                    param.zero_()
                elif not fill_shard(sub, name, param, std, gen):  # a tensor-parallel shard: its slice of the whole
                    param.copy_(torch.empty(param.shape, device=param.device).normal_(0.0, std, generator=gen))

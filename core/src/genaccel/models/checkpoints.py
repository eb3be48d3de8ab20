"""Local Hugging Face checkpoint folders: checked, loaded in the run's dtype on its device (each
rank reading only its slices under tensor parallelism), with one-line errors naming the folder and
the part that would not load."""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from transformers import AutoTokenizer, GenerationConfig
from transformers.utils import logging as hf_logging

from ..errors import GenaccelError, cannot_load
from ..files import read_json_object
from ..plugin.specs import BuildOptions
from .loading import check_loading_info
from .slices import load_slices

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model", "sentencepiece.bpe.model")


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def hub_cache() -> Path:
    """Where huggingface_hub keeps downloaded models: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
    ``~/.cache/huggingface/hub`` (read now, not when huggingface_hub was imported)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "huggingface"
    return Path(home).expanduser() / "hub"


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint given as a folder, or as a Hugging Face Hub id (``Qwen/Qwen2.5-0.5B``) that is not a
    folder here: its snapshot in the local Hugging Face cache (:func:`hub_cache`), looked up offline.
    genaccel never downloads: an id missing from the cache is a one-line error saying how to get it."""
    path = Path(path)
    if path.exists() or not _HUB_ID.fullmatch(str(path)):
        return path
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    cache = hub_cache()
    try:
        return Path(snapshot_download(str(path), cache_dir=cache, local_files_only=True))
    except LocalEntryNotFoundError:
        raise GenaccelError(f"checkpoint {str(path)!r} is not a folder, and as a Hugging Face Hub id it is not in the "
                            f"local cache {str(cache)!r} (HF_HUB_CACHE, or HF_HOME/hub); genaccel does not download: "
                            f"run `hf download {path}` first, or pass the model's folder") from None


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


def load_hf_checkpoint(options: BuildOptions, model_class, *, model_types: tuple[str, ...], shard=None, restore=None):
    """A checked local Hugging Face folder's model (``model_class``, in the run's dtype, on its
    device) and tokenizer; any failure is a clear error naming the folder.  Missing weights are an
    error unless the workload option ``allow_missing_weights`` is true; the model then carries their
    names in ``genaccel_missing_weights``.

    ``shard`` (:func:`genaccel.distributed.tp.shard_causal_lm`) splits the model between the ranks
    of a tensor-parallel group: in a run of ``options.tp`` > 1 ranks the model is built on the meta
    device, sharded, and each rank reads only its own slices of the safetensors files
    (:func:`genaccel.models.slices.load_slices`); a checkpoint of ``.bin`` files is loaded whole and
    then sharded; ``restore(model)`` then sets the buffers a meta build leaves undefined."""
    path = resolve_checkpoint(options.checkpoint)
    check_checkpoint_dir(path, model_types=model_types)
    check_tokenizer_files(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except Exception as e:  # noqa: BLE001 - any failure here is a broken directory
        raise cannot_load(path, "its tokenizer", e) from None
    allow = str(options.options.get("allow_missing_weights", "")).lower() in ("1", "true", "yes")
    if shard is not None and options.tp > 1 and any(Path(path).glob("*.safetensors")):
        return _load_sharded(path, options, model_class, shard, restore, allow), tokenizer
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


def _load_sharded(path: Path, options: BuildOptions, model_class, shard, restore, allow_missing: bool):
    """This rank's shard of a checkpoint's model: built on meta, sharded, filled from its files."""
    try:
        config = model_class.config_class.from_pretrained(path)
        generation = (GenerationConfig.from_pretrained(path) if (Path(path) / "generation_config.json").is_file()
                      else None)
    except Exception as e:  # noqa: BLE001
        raise cannot_load(path, "its config", e) from None
    with torch.device("meta"):
        hf = model_class(config).to(options.torch_dtype)
    shard(hf)
    load_slices(hf, path, options.device, allow_missing=allow_missing)
    if restore is not None:  # buffers are not in the files
        restore(hf)
    if generation is not None:
        hf.generation_config = generation
    return hf


"""Phenaki checkpoint folders (``--checkpoint DIR``), written by ``save_checkpoint`` and read by
``load_checkpoint``:

- ``DIR/phenaki.json``: ``{"cvivit": {...}, "maskgit": {...}, "decoding": {...}}``, the fields of
  ``CViViTConfig`` and ``MaskGITConfig`` and the decoding defaults (``frames``, ``steps``, ``guidance_weight`` λ,
  ``temperature``, ``text_length``);
- ``DIR/maskgit.safetensors``, ``DIR/cvivit.safetensors``: the two modules' state dicts;
- ``DIR/text_encoder/``: a transformers ``T5EncoderModel`` folder (``config.json`` and weights), T5 v1.1's encoder;
- ``DIR/tokenizer/``: a transformers tokenizer folder for that encoder.

Every part is checked to be there before anything loads, and the frame count before any weight is read; a
missing or broken part is a one-line error naming the folder and the part.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import torch
from genaccel.api import GenaccelError, cannot_load, check_loading_info, read_json_object, write_bytes, write_json

from .build import PhenakiModules, checked_frames
from .config import CViViTConfig, MaskGITConfig, T5Shape
from .cvivit import CViViT
from .maskgit import MaskGIT
from .presets import Preset

#: the parts of a checkpoint folder and what each holds
PARTS = {"phenaki.json": "the C-ViViT and MaskGIT configs and decoding defaults",
         "maskgit.safetensors": "the MaskGIT transformer's weights", "cvivit.safetensors": "C-ViViT's weights",
         "text_encoder": "a transformers T5EncoderModel folder", "tokenizer": "a transformers tokenizer folder"}
DECODING = ("frames", "steps", "guidance_weight", "temperature", "text_length")


def save_checkpoint(workload, path) -> Path:
    """``workload``'s modules, tokenizer and decoding defaults as a checkpoint folder at ``path``."""
    from safetensors.torch import save

    path = Path(path)
    preset = workload.preset
    decoding = {name: getattr(preset, name) for name in DECODING}
    config = {"cvivit": attrs.asdict(preset.cvivit), "maskgit": attrs.asdict(preset.maskgit), "decoding": decoding}
    write_json(path / "phenaki.json", config)
    for name in ("maskgit", "cvivit"):
        state = {k: v.detach().contiguous().cpu() for k, v in getattr(workload, name).state_dict().items()}
        write_bytes(path / f"{name}.safetensors", save(state))
    workload.text_encoder.save_pretrained(path / "text_encoder")
    workload.tokenizer.save_pretrained(path / "tokenizer")
    return path


def read_preset(path: Path) -> Preset:
    """The preset a checkpoint folder describes (its configs, its T5's width, its decoding defaults)."""
    doc = read_json_object(path / "phenaki.json", "Phenaki checkpoint config")
    t5 = read_json_object(path / "text_encoder" / "config.json", "T5 encoder config")
    try:
        shape = T5Shape(d_model=t5["d_model"], d_ff=t5["d_ff"], layers=t5["num_layers"], heads=t5["num_heads"],
                        vocab_size=t5["vocab_size"])
        return Preset(name=path.name, cvivit=CViViTConfig(**doc["cvivit"]), maskgit=MaskGITConfig(**doc["maskgit"]),
                      t5=shape, **{name: doc["decoding"][name] for name in DECODING})
    except (KeyError, TypeError, ValueError) as e:
        raise cannot_load(path, "phenaki.json and text_encoder/config.json as one Phenaki model", e) from None


def _weights(path: Path, name: str, module: torch.nn.Module, device: str, dtype) -> torch.nn.Module:
    """``module`` (built on the meta device) filled from ``DIR/<name>.safetensors``, every tensor required."""
    from safetensors.torch import load_file

    try:
        module.load_state_dict(load_file(path / f"{name}.safetensors"), strict=True, assign=True)
    except Exception as e:  # noqa: BLE001 - any failure here is a broken part
        raise cannot_load(path, f"{name}.safetensors", e) from None
    return module.to(device, dtype).eval()


def _text_encoder(path: Path, device: str, dtype):
    from transformers import T5EncoderModel
    from transformers.utils import logging as hf_logging

    folder = path / "text_encoder"
    verbosity, bar = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # its load report and progress bar are replaced by check_loading_info's line
    hf_logging.disable_progress_bar()
    try:
        model, info = T5EncoderModel.from_pretrained(folder, dtype=dtype, output_loading_info=True)
    except Exception as e:  # noqa: BLE001
        raise cannot_load(path, "text_encoder/", e) from None
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar:
            hf_logging.enable_progress_bar()
    check_loading_info(folder, info, allow_missing=False)
    return model.to(device).eval()


def load_checkpoint(options):
    """The workload of ``options.checkpoint``: parts checked, frames checked, then the weights read."""
    from transformers import AutoTokenizer

    from .workload import Phenaki

    path = Path(options.checkpoint)
    if not path.is_dir():
        raise GenaccelError(f"checkpoint {str(path)!r} is not a folder; pass a Phenaki checkpoint folder "
                            f"({', '.join(PARTS)})")
    for part, what in PARTS.items():
        if not (path / part).exists():
            raise GenaccelError(f"checkpoint {str(path)!r} lacks {part} ({what}); a Phenaki checkpoint holds "
                                f"{', '.join(PARTS)}")
    preset = read_preset(path)
    frames = checked_frames(preset, options.options.get("frames"))
    device, dtype = options.device, options.torch_dtype
    with torch.device("meta"):
        maskgit, cvivit = MaskGIT(preset.maskgit), CViViT(preset.cvivit)
    maskgit, cvivit = _weights(path, "maskgit", maskgit, device, dtype), _weights(path, "cvivit", cvivit, device, dtype)
    modules = PhenakiModules(preset=preset, text_encoder=_text_encoder(path, device, dtype), maskgit=maskgit,
                             cvivit=cvivit)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path / "tokenizer")
    except Exception as e:  # noqa: BLE001
        raise cannot_load(path, "tokenizer/", e) from None
    return Phenaki(modules=modules, tokenizer=tokenizer, frames=frames, device=device, random_weights=False,
                   name=f"phenaki ({path.name})", data=options.data)

"""parti/t-i's checkpoint folder (``--checkpoint DIR``): the layout, saving and loading.

::

    DIR/config.json, DIR/model.safetensors, DIR/generation_config.json
        the encoder-decoder Transformer: transformers' ``save_pretrained`` of PartiForConditionalGeneration
        (``model_type`` "parti")
    DIR/tokenizer.json, DIR/tokenizer_config.json
        the text tokenizer: its ``save_pretrained``
    DIR/vitvqgan/config.json, DIR/vitvqgan/model.safetensors
        the ViT-VQGAN: its shape (:class:`~genaccel_parti.presets.ViTVQGANShape` as JSON) and every weight

:func:`save_checkpoint` writes it; a missing or broken part is a one-line error naming the folder and the part.
"""

from __future__ import annotations

from pathlib import Path

import attrs
from genaccel.api import GenaccelError, cannot_load, load_hf_checkpoint, read_json_object, write_json
from safetensors.torch import load_file, save_file

from .build import PartiParts
from .model import PartiForConditionalGeneration
from .presets import Preset, TransformerShape, ViTShape, ViTVQGANShape
from .vitvqgan import build_vitvqgan

VQGAN_DIR = "vitvqgan"
MODEL_TYPES = ("parti",)


def save_checkpoint(parts: PartiParts, path) -> Path:
    """Write ``parts`` (the Transformer, the text tokenizer, the ViT-VQGAN) as a ``--checkpoint`` folder."""
    path = Path(path)
    parts.transformer.save_pretrained(path)
    parts.tokenizer.save_pretrained(path)
    (path / VQGAN_DIR).mkdir(parents=True, exist_ok=True)
    write_json(path / VQGAN_DIR / "config.json", attrs.asdict(parts.vqgan.shape))
    state = {k: v.detach().contiguous().cpu() for k, v in parts.vqgan.state_dict().items()}
    save_file(state, str(path / VQGAN_DIR / "model.safetensors"))
    return path


def vqgan_shape(config: dict) -> ViTVQGANShape:
    """The ViT-VQGAN's shape from its saved config (nested ViT shapes)."""
    stacks = {k: ViTShape(**config[k]) for k in ("encoder", "decoder")}
    return ViTVQGANShape(**{**config, **stacks})


def checkpoint_preset(transformer: PartiForConditionalGeneration, vqgan: ViTVQGANShape) -> Preset:
    """The Preset record of a loaded checkpoint (the shapes ``describe()`` and the run read)."""
    cfg = transformer.config
    shape = TransformerShape(d_model=cfg.d_model, encoder_layers=cfg.encoder_layers, decoder_layers=cfg.decoder_layers,
                             heads=cfg.decoder_attention_heads, mlp=cfg.decoder_ffn_dim, text_vocab_size=cfg.vocab_size,
                             max_text_len=min(cfg.max_position_embeddings, 128))
    return Preset("checkpoint", shape, vqgan)


def load_checkpoint(options) -> PartiParts:
    """The folder's parts (``options``: the run's BuildOptions) on the run's device, the Transformer in its dtype."""
    transformer, tokenizer = load_hf_checkpoint(options, PartiForConditionalGeneration, model_types=MODEL_TYPES)
    folder = Path(options.checkpoint) / VQGAN_DIR
    files = [folder / "config.json", folder / "model.safetensors"]
    missing = [str(f.relative_to(options.checkpoint)) for f in files if not f.is_file()]
    if missing:
        raise GenaccelError(f"checkpoint {str(options.checkpoint)!r} lacks the ViT-VQGAN ({', '.join(missing)}); "
                            f"save the whole model with genaccel_parti.checkpoint.save_checkpoint")
    try:
        shape = vqgan_shape(read_json_object(files[0], "ViT-VQGAN config"))
    except (TypeError, ValueError, KeyError) as e:
        raise cannot_load(options.checkpoint, "the ViT-VQGAN's config", e) from None
    vqgan = load_vqgan(options.checkpoint, shape, files[1], options.device)
    if transformer.config.image_vocab_size != shape.codebook_size + 2:
        raise GenaccelError(f"checkpoint {str(options.checkpoint)!r}: the decoder's {transformer.config.image_vocab_size}"
                            f" image ids do not fit the ViT-VQGAN's {shape.codebook_size} codes (codes + <pad>, <bos>)")
    return PartiParts(preset=checkpoint_preset(transformer, shape), transformer=transformer.eval(), vqgan=vqgan,
                      tokenizer=tokenizer)


def load_vqgan(checkpoint: Path, shape: ViTVQGANShape, weights: Path, device):
    """The ViT-VQGAN of ``shape`` with every weight from ``weights`` (float32, on ``device``)."""
    vqgan = build_vitvqgan(shape, meta=True).to_empty(device=device)
    try:
        vqgan.load_state_dict(load_file(str(weights), device=str(device)), strict=True)
    except Exception as e:  # noqa: BLE001 - a broken file, missing or misshapen weights: one line
        raise cannot_load(checkpoint, "the ViT-VQGAN's weights", e) from None
    return vqgan.eval()

"""A sharded model's weights read from a checkpoint's safetensors files: each rank reads only the
slices it holds (see :func:`genaccel.models.weights.slice_of` for how a slice is marked)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from safetensors import safe_open

from ..errors import GenaccelError
from ..files import read_json_object
from .loading import check_loading_info
from .weights import init_random_weights, slice_of


def _owned_params(hf) -> dict:
    """``name -> (module, attribute, parameter)`` for each parameter once (a tied one by its first name)."""
    out, seen = {}, set()
    for prefix, module in hf.named_modules():
        for attr, param in module.named_parameters(recurse=False):
            if id(param) not in seen:
                seen.add(id(param))
                out[f"{prefix}.{attr}" if prefix else attr] = (module, attr, param)
    return out


def load_slices(hf, path, device: str, *, allow_missing: bool = False) -> None:
    """Fill ``hf``, built on the meta device and sharded by :func:`genaccel.distributed.tp.shard_causal_lm`, from the
    safetensors files of the checkpoint folder ``path`` (one file or several with
    ``model.safetensors.index.json``): a sharded weight's slice is read alone (``get_slice``), a
    replicated one whole.  Missing, unexpected and misshapen weights are judged as a whole load's
    (:func:`genaccel.models.loading.check_loading_info`); the model records the names left random in
    ``genaccel_missing_weights`` and the bytes this rank read in ``genaccel_checkpoint_bytes_read``."""
    path = Path(path)
    index = path / "model.safetensors.index.json"
    if index.is_file():
        where = dict(read_json_object(index, "checkpoint index").get("weight_map") or {})
    else:
        where = {}
        for file in sorted(path.glob("*.safetensors")):
            with safe_open(str(file), "pt") as f:
                where.update(dict.fromkeys(f.keys(), file.name))
    absent = sorted({f for f in where.values() if not (path / f).is_file()})
    if absent:
        raise GenaccelError(f"checkpoint {str(path)!r}: its index names {len(absent)} files that are not there "
                            f"({', '.join(absent[:3])}); copy the whole checkpoint")
    params = _owned_params(hf)
    missing = [n for n in params if n not in where]
    unexpected = [n for n in where if n not in params and "rotary_emb" not in n]
    with contextlib.ExitStack() as files:
        opened = {}

        def file_of(name):
            if where[name] not in opened:
                opened[where[name]] = files.enter_context(safe_open(str(path / where[name]), "pt", device="cpu"))
            return opened[where[name]]

        def full_shape(name):
            module, attr, param = params[name]
            shard = slice_of(module, attr)
            return shard.full if shard else tuple(param.shape)

        mismatched = [n for n in params if n in where and tuple(file_of(n).get_slice(n).get_shape()) != full_shape(n)]
        hf.genaccel_missing_weights = check_loading_info(
            path, {"missing_keys": missing, "unexpected_keys": unexpected, "mismatched_keys": mismatched},
            allow_missing=allow_missing)
        hf.to_empty(device=device)
        if missing:
            init_random_weights(hf, seed=0)
        read = 0
        with torch.no_grad():
            for name, (module, attr, param) in _owned_params(hf).items():  # to_empty made new parameters
                if name not in where:
                    continue
                shard = slice_of(module, attr)
                if shard is None:
                    part = file_of(name).get_tensor(name)
                else:  # each range of the rank's part read alone (a fused projection's blocks: one per block)
                    whole = file_of(name).get_slice(name)
                    part = torch.cat([whole[(slice(None),) * shard.dim + (slice(a, b),)] for a, b in shard.ranges()],
                                     dim=shard.dim)
                param.copy_(part)
                read += part.numel() * part.element_size()
    hf.genaccel_checkpoint_bytes_read = read

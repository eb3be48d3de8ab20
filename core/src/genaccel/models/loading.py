"""Judging a checkpoint load: missing weights are an error (the model would run on random ones)
unless allowed, misshapen ones always, unexpected ones a warning; and what ``describe()`` says of
the weights a run used."""

from __future__ import annotations

from pathlib import Path

from ..errors import GenaccelError
from ..files import warn


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

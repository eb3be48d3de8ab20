"""Spread over repetitions: a figure's mean, standard deviation and 95% confidence interval over a
case's repeated timed batches (``--repeat N``, as llama-bench's avg ± sd over ``-r``), and whether a
change between two cases stands out of their noise.  Light: no torch."""

from __future__ import annotations

import math
import statistics

#: Student's t at 97.5% (a two-sided 95% interval) by degrees of freedom 1..30; beyond, the normal's 1.96
T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t_975(df: int) -> float:
    return T_975[df - 1] if df <= len(T_975) else 1.96


def spread(values: list[float | None]) -> dict:
    """``values`` (one per repetition) with their mean, sample standard deviation and 95% interval of
    the mean (Student's t); sd and interval are None with fewer than two repetitions."""
    vals = [v for v in values if v is not None]
    out = {"n": len(vals), "values": vals, "mean": statistics.fmean(vals) if vals else None, "sd": None, "ci95": None}
    if len(vals) >= 2:
        sd = statistics.stdev(vals)
        half = t_975(len(vals) - 1) * sd / math.sqrt(len(vals))
        out.update(sd=sd, ci95=[out["mean"] - half, out["mean"] + half])
    return out


def relative_half_width(s: dict | None) -> float | None:
    """Half the 95% interval over the mean (0.05: ±5%), or None without repetitions."""
    if not s or not s.get("ci95") or not s.get("mean"):
        return None
    lo, hi = s["ci95"]
    return (hi - lo) / 2 / s["mean"]


def noise(a: dict | None, b: dict | None) -> float | None:
    """The relative change two cases' throughputs could show by chance: their 95% intervals' relative
    half-widths combined (root of the sum of squares); None when neither was repeated, the one's
    alone when only one was."""
    widths = [w for w in (relative_half_width(a), relative_half_width(b)) if w is not None]
    return math.sqrt(sum(w * w for w in widths)) if widths else None

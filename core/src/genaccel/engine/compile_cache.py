"""torch.compile's artifacts kept across processes, in genaccel's cache directory.

Inductor caches what it builds on disk (its FX graph cache: the generated code and the compiled C++
libraries; AOTAutograd's cache: the joint graph), keyed by the traced graph, the input shapes and
dtypes, Inductor's settings and torch's version — so a change of model shape, stack (another
graph, another compile mode) or torch misses, and the same case in a second process hits.  Left to
itself Inductor keeps these under the system's temporary directory; :func:`use_genaccel_dir` moves
them under ``cache_dir()/inductor/torch-<version>`` (one folder per torch version, so an upgrade
leaves the old artifacts whole and removable), so they live as long as genaccel's other caches and
``$GENACCEL_CACHE`` decides where.  Dynamo's tracing is per process: a warm build still traces.

:class:`CacheTally` counts the hits and misses of both caches over a stretch of work (a case's
stack and warm-up), so a report can say whether its compile time was a cold or a warm build.
"""

from __future__ import annotations

import os

import torch
from torch._dynamo.utils import counters

from ..files import cache_dir

#: (counter group, counter name) of the caches' events, named as the report shows them
_EVENTS = {
    "hits": (("inductor", "fxgraph_cache_hit"), ("aot_autograd", "autograd_cache_hit")),
    "misses": (("inductor", "fxgraph_cache_miss"), ("aot_autograd", "autograd_cache_miss")),
    "bypasses": (("inductor", "fxgraph_cache_bypass"), ("aot_autograd", "autograd_cache_bypass")),
}


def inductor_dir() -> str:
    """The folder of this torch version's compiled artifacts under genaccel's cache."""
    return str(cache_dir() / "inductor" / f"torch-{torch.__version__}")


def use_genaccel_dir() -> str:
    """Point Inductor's on-disk caches at :func:`inductor_dir` (before a compile; idempotent)."""
    path = inductor_dir()
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR") != path:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = path
    return path


def _count() -> dict[str, int]:
    return {name: sum(counters[group][key] for group, key in events) for name, events in _EVENTS.items()}


class CacheTally:
    """Hits, misses and bypasses of the compile caches between ``__enter__`` and ``__exit__``;
    :meth:`result` says whether the compiles found their artifacts (``build``: "warm" when every
    compiled graph was a hit, "cold" when any was built, None when nothing compiled; a cold process
    can count hits too, a graph it compiles twice)."""

    def __enter__(self) -> CacheTally:
        self._start, self._end = _count(), None
        return self

    def __exit__(self, *exc) -> None:
        self._end = _count()

    def result(self) -> dict:
        now = self._end or _count()
        n = {k: now[k] - self._start[k] for k in now}
        built = n["misses"] + n["bypasses"]
        build = None if not built + n["hits"] else "cold" if built else "warm"
        return {"build": build, **n, "dir": os.environ.get("TORCHINDUCTOR_CACHE_DIR")}

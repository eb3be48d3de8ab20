"""A bench's progress on stderr: ``[i/N] case ... ~M min left``, the time left estimated from the
wall time of the cases finished so far (the mean of the same workload's, else of all), so that a
newcomer's first ``nox -s bench`` says how long it still has to go."""

from __future__ import annotations

import sys
import time


class Progress:
    """Counts ``total`` cases and estimates the time left from the finished ones' wall times."""

    def __init__(self, workloads: list[str | None]):
        self.workloads = workloads  # the workload of every case, in run order (None: one that will not run)
        self.seconds: dict[str, list[float]] = {}  # measured wall time per workload
        self._start: float | None = None

    def _left_s(self, i: int) -> float | None:
        """Seconds the cases from the ``i``-th (1-based) on will take, None before any was timed."""
        every = [s for times in self.seconds.values() for s in times]
        if not every:
            return None
        mean = sum(every) / len(every)
        return sum(_mean(self.seconds.get(w)) or mean for w in self.workloads[i - 1:] if w is not None)

    def start(self, i: int, what: str) -> None:
        """Case ``i`` (1-based) begins: print the counter, the case and the time left."""
        left = self._left_s(i)
        eta = "" if left is None else f"  ~{max(1, round(left / 60))} min left"
        print(f"[{i}/{len(self.workloads)}] {what}{eta}", file=sys.stderr, flush=True)
        self._start = time.perf_counter()

    def done(self, i: int) -> None:
        """Case ``i`` finished (measured, failed or recorded): its wall time counts for the estimate."""
        if self._start is not None:
            self.seconds.setdefault(self.workloads[i - 1], []).append(time.perf_counter() - self._start)
            self._start = None

    def note(self, i: int, what: str) -> None:
        """Case ``i`` does not run (finished before, or the same as another): one line, no time."""
        print(f"[{i}/{len(self.workloads)}] {what}", file=sys.stderr, flush=True)


def _mean(values: list[float] | None) -> float | None:
    return sum(values) / len(values) if values else None

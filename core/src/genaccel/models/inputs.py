"""Input records and length distributions that workloads share."""

from __future__ import annotations

import math
import random

import attrs

from ..errors import GenaccelError


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


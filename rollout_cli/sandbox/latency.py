"""Response-time distributions: log-normal, described the way people read dashboards.

A profile is given by its mean and its 95th percentile; the log-normal's parameters
follow from those two numbers. Buckets of simulated traffic remember which profile
they were drawn from, so any window's percentile is the exact quantile of a mixture
of a few profiles instead of an estimate from stored samples.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from statistics import NormalDist

_STANDARD = NormalDist()
Z95 = _STANDARD.inv_cdf(0.95)
# p95/mean of a log-normal peaks at exp(Z95**2 / 2) ~ 3.87; beyond it no sigma fits.
MAX_P95_OVER_MEAN = 3.8


def check_latency(mean_ms: float, p95_ms: float) -> None:
    """ValueError unless a log-normal has this mean and 95th percentile."""
    if mean_ms <= 0:
        raise ValueError(f"latency mean must be positive, got {mean_ms:g}")
    if not 1.0 < p95_ms / mean_ms <= MAX_P95_OVER_MEAN:
        raise ValueError(
            f"latency p95 must be above the mean and at most {MAX_P95_OVER_MEAN}x it "
            f"(mean {mean_ms:g} ms, p95 {p95_ms:g} ms)"
        )


# eq=False: profiles are made once per model and used as dict keys in every bucket of
# traffic; identity hashing keeps that cheap.
@dataclass(frozen=True, eq=False)
class LatencyProfile:
    mean_ms: float
    p95_ms: float

    def __post_init__(self) -> None:
        check_latency(self.mean_ms, self.p95_ms)

    @cached_property
    def sigma(self) -> float:
        # ln(p95) - ln(mean) = Z95*s - s^2/2; the smaller root is the usual right-skewed shape.
        gap = math.log(self.p95_ms / self.mean_ms)
        return Z95 - math.sqrt(Z95 * Z95 - 2 * gap)

    @cached_property
    def mu(self) -> float:
        return math.log(self.mean_ms) - self.sigma * self.sigma / 2

    @cached_property
    def coefficient_of_variation(self) -> float:
        return math.sqrt(math.expm1(self.sigma * self.sigma))

    def scaled(self, factor: float) -> LatencyProfile:
        return LatencyProfile(self.mean_ms * factor, self.p95_ms * factor)

    def cdf(self, ms: float) -> float:
        if ms <= 0:
            return 0.0
        return _STANDARD.cdf((math.log(ms) - self.mu) / self.sigma)

    def sample(self, rng: random.Random) -> float:
        return rng.lognormvariate(self.mu, self.sigma)


def mixture_quantile(weights: Mapping[LatencyProfile, int], q: float = 0.95) -> float | None:
    """The q-quantile (ms) of requests drawn from several profiles; None without requests."""
    present = {p: n for p, n in weights.items() if n > 0}
    if not present:
        return None
    if len(present) == 1:
        (profile,) = present
        return math.exp(profile.mu + _STANDARD.inv_cdf(q) * profile.sigma)
    # Bisection on log-latency, down to a relative error of 1e-9 (answers show 0.1 ms).
    total = sum(present.values())
    spread = 6 * max(p.sigma for p in present)
    low = min(p.mu for p in present) - spread
    high = max(p.mu for p in present) + spread
    while high - low > 1e-9:
        middle = (low + high) / 2
        below = sum(n * p.cdf(math.exp(middle)) for p, n in present.items()) / total
        low, high = (middle, high) if below < q else (low, middle)
    return math.exp((low + high) / 2)

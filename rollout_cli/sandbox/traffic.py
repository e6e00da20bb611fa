"""Simulated user traffic in fixed buckets of simulated time, with aggregated counts.

One bucket holds, per variant, how many requests arrived, how many failed (by status
code), the sum of their latencies and the latency profile they were drawn from. Counts
are drawn, never one object per simulated request, so days of traffic take a fraction of
a second: requests arrive as a Poisson stream, and a Poisson stream split at random
(legacy or modern, success or one of the error codes) is a set of independent Poisson
streams, so every count is one Poisson draw. Only the last hour of buckets is kept;
cumulative totals (what /metrics exposes) are kept separately and never shrink.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from rollout_cli.sandbox.latency import LatencyProfile, mixture_quantile

BUCKET_SECONDS = 10.0
HISTORY_SECONDS = 3600.0
VARIANTS = ("legacy", "modern")
ERROR_CODES = (500, 503, 504)
ERROR_SHARES = (0.60, 0.25, 0.15)  # of the failures: internal, upstream unavailable, timeout


class Behaviour(NamedTuple):
    """How a variant answers at some moment: how often it succeeds, and how fast."""

    success_rate: float
    latency: LatencyProfile


def draw_poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean >= 30:  # close enough to a normal by now, and one draw
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    u = rng.random()  # inversion: about `mean` steps
    k, term = 0, math.exp(-mean)
    cumulative = term
    while u > cumulative and k < 1000:
        k += 1
        term *= mean / k
        cumulative += term
    return k


@dataclass(slots=True)
class VariantBucket:
    requests: int = 0
    errors: int = 0
    codes: tuple[int, int, int] = (0, 0, 0)  # failures answered 500, 503, 504
    latency_sum_ms: float = 0.0
    profile: LatencyProfile | None = None

    def add(self, other: VariantBucket) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.codes = (
            self.codes[0] + other.codes[0],
            self.codes[1] + other.codes[1],
            self.codes[2] + other.codes[2],
        )
        self.latency_sum_ms += other.latency_sum_ms


@dataclass(slots=True)
class Bucket:
    index: int
    end: float  # simulated seconds since the sandbox started
    legacy: VariantBucket
    modern: VariantBucket

    def variant(self, name: str) -> VariantBucket:
        return self.modern if name == "modern" else self.legacy


def draw_variant(rng: random.Random, expected: float, behaviour: Behaviour) -> VariantBucket:
    """One variant's part of a bucket in which it expects ``expected`` requests."""
    failing = expected * (1.0 - behaviour.success_rate)
    code_500, code_503, code_504 = (draw_poisson(rng, failing * share) for share in ERROR_SHARES)
    errors = code_500 + code_503 + code_504
    requests = draw_poisson(rng, expected * behaviour.success_rate) + errors
    profile = behaviour.latency
    if requests == 0:
        return VariantBucket(profile=profile)  # live requests may still join it
    # The mean of n log-normal draws is close to normal with sd = cv * mean / sqrt(n).
    spread = profile.mean_ms * profile.coefficient_of_variation / math.sqrt(requests)
    mean = max(0.0, rng.gauss(profile.mean_ms, spread))
    return VariantBucket(requests, errors, (code_500, code_503, code_504), requests * mean,
                         profile)


@dataclass
class VariantStats:
    """A variant's traffic over a window or since the start; rates are None without requests."""

    requests: int = 0
    errors: int = 0
    codes: tuple[int, int, int] = (0, 0, 0)
    latency_sum_ms: float = 0.0
    profiles: dict[LatencyProfile, int] = field(default_factory=dict)

    def add(self, part: VariantBucket) -> None:
        if not part.requests:
            return
        self.requests += part.requests
        self.errors += part.errors
        mine, theirs = self.codes, part.codes
        self.codes = (mine[0] + theirs[0], mine[1] + theirs[1], mine[2] + theirs[2])
        self.latency_sum_ms += part.latency_sum_ms
        if part.profile is not None:
            self.profiles[part.profile] = self.profiles.get(part.profile, 0) + part.requests

    def absorb(self, other: VariantStats) -> None:
        self.requests += other.requests
        self.errors += other.errors
        mine, theirs = self.codes, other.codes
        self.codes = (mine[0] + theirs[0], mine[1] + theirs[1], mine[2] + theirs[2])
        self.latency_sum_ms += other.latency_sum_ms
        for profile, n in other.profiles.items():
            self.profiles[profile] = self.profiles.get(profile, 0) + n

    def copy(self) -> VariantStats:
        return VariantStats(
            self.requests, self.errors, self.codes, self.latency_sum_ms, dict(self.profiles)
        )

    @property
    def success_rate(self) -> float | None:
        return None if self.requests == 0 else (self.requests - self.errors) / self.requests

    @property
    def error_rate(self) -> float | None:
        return None if self.requests == 0 else self.errors / self.requests

    @property
    def mean_latency_ms(self) -> float | None:
        return None if self.requests == 0 else self.latency_sum_ms / self.requests

    @property
    def p95_latency_ms(self) -> float | None:
        return mixture_quantile(self.profiles, 0.95)


class History:
    """The last hour of buckets, oldest first."""

    def __init__(self, seconds: float = HISTORY_SECONDS):
        self._buckets: deque[Bucket] = deque(maxlen=math.ceil(seconds / BUCKET_SECONDS))
        self._stats: dict[float, dict[str, VariantStats]] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def append(self, bucket: Bucket) -> None:
        self._buckets.append(bucket)
        self._stats.clear()

    def last(self, seconds: float) -> list[Bucket]:
        """The buckets of the last ``seconds``, oldest first."""
        count = min(len(self._buckets), math.ceil(seconds / BUCKET_SECONDS - 1e-9))
        return list(itertools.islice(self._buckets, len(self._buckets) - count, None))

    def stats(self, seconds: float) -> dict[str, VariantStats]:
        """Each variant's traffic over the last ``seconds``. Made once per bucket appended,
        as a simulation's tick asks several endpoints for the same windows, and shared:
        treat it as read-only."""
        if seconds not in self._stats:
            self._stats[seconds] = summarize(self.last(seconds))
        return self._stats[seconds]


def summarize(buckets: Iterable[Bucket]) -> dict[str, VariantStats]:
    legacy, modern = VariantStats(), VariantStats()
    for bucket in buckets:
        legacy.add(bucket.legacy)
        modern.add(bucket.modern)
    return {"legacy": legacy, "modern": modern}

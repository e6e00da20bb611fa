"""Simulated user traffic in fixed buckets of simulated time, with aggregated counts.

One bucket holds, per variant, how many requests arrived, how many failed (by status
code), the sum of their latencies and the latency profile they were drawn from, plus
the heap at the bucket's end. Counts are drawn from ``random.Random`` with cheap exact
or normal approximations, never one object per simulated request, so days of traffic
take a fraction of a second. Only the last hour of buckets is kept; cumulative totals
(what /metrics exposes) are kept separately and never shrink.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, TypeVar

from rollout_cli.sandbox.latency import LatencyProfile, mixture_quantile

T = TypeVar("T")

BUCKET_SECONDS = 10.0
HISTORY_SECONDS = 3600.0
VARIANTS = ("legacy", "modern")
ERROR_CODES = (500, 503, 504)
# Which failure gets which code, repeating: 60% 500, 25% 503, 15% 504. Splitting by a
# fixed cycle keeps every per-code counter monotonic, as Prometheus requires.
_CODE_CYCLE = (0, 1, 0, 2, 0, 0, 1, 0, 2, 0, 1, 0, 0, 1, 0, 2, 0, 0, 1, 0)
_CYCLE = len(_CODE_CYCLE)
_FULL = tuple(_CODE_CYCLE.count(code) for code in range(3))
# _PARTIAL[start][n]: the codes of n consecutive failures beginning at cycle position start.
_PARTIAL = [
    [
        tuple(
            sum(1 for i in range(n) if _CODE_CYCLE[(begin + i) % _CYCLE] == code)
            for code in range(3)
        )
        for n in range(_CYCLE)
    ]
    for begin in range(_CYCLE)
]
# A standard normal by table lookup: random.gauss costs several times more, and a
# simulation drawing ~5 normals per bucket for days of buckets feels it. 4096 quantiles
# reach +-3.7 sigma, plenty for noise on counts and means.
_NORMAL_LEVELS = 4096
_NORMAL_TABLE = tuple(
    NormalDist().inv_cdf((i + 0.5) / _NORMAL_LEVELS) for i in range(_NORMAL_LEVELS)
)


# Below this variance the normal approximation of a binomial is too coarse.
_EXACT_BELOW_VARIANCE = 9.0


def split_error_codes(errors: int, offset: int = 0) -> tuple[int, int, int]:
    """How many of ``errors`` failures answer 500, 503 and 504."""
    cycles, rest = divmod(errors, _CYCLE)
    a, b, c = _PARTIAL[offset % _CYCLE][rest]
    return (cycles * _FULL[0] + a, cycles * _FULL[1] + b, cycles * _FULL[2] + c)


def error_code_at(index: int) -> int:
    return ERROR_CODES[_CODE_CYCLE[index % _CYCLE]]


def draw_poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean >= 30:
        count = round(mean + math.sqrt(mean) * _NORMAL_TABLE[int(rng.random() * _NORMAL_LEVELS)])
        return count if count > 0 else 0
    u = rng.random()  # inversion: about `mean` steps
    k, term = 0, math.exp(-mean)
    cumulative = term
    while u > cumulative and k < 1000:
        k += 1
        term *= mean / k
        cumulative += term
    return k


def draw_binomial(rng: random.Random, n: int, p: float) -> int:
    if n <= 0 or p <= 0:
        return 0
    if p >= 1:
        return n
    if p > 0.5:
        return n - draw_binomial(rng, n, 1 - p)
    variance = n * p * (1 - p)
    if variance >= _EXACT_BELOW_VARIANCE:
        z = _NORMAL_TABLE[int(rng.random() * _NORMAL_LEVELS)]
        return min(n, max(0, round(n * p + math.sqrt(variance) * z)))
    u = rng.random()  # inversion: about n*p steps, since p <= 0.5 and n*p is small here
    k, term = 0, (1 - p) ** n
    cumulative = term
    odds = p / (1 - p)
    while u > cumulative and k < n:
        term *= (n - k) / (k + 1) * odds
        k += 1
        cumulative += term
    return k


@dataclass(slots=True)
class VariantBucket:
    requests: int = 0
    errors: int = 0
    codes: tuple[int, int, int] = (0, 0, 0)  # failures answered 500, 503, 504
    latency_sum_ms: float = 0.0
    profile: LatencyProfile | None = None
    heap_mb: float = 0.0

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


def draw_variant(
    rng: random.Random, requests: int, success_rate: float, profile: LatencyProfile, offset: int
) -> VariantBucket:
    """One variant's share of a bucket: failures by code and the latency sum."""
    if requests == 0:
        return VariantBucket(profile=profile)
    errors = draw_binomial(rng, requests, 1.0 - success_rate)
    codes = split_error_codes(errors, offset) if errors else (0, 0, 0)
    # The mean of n log-normal draws is close to normal with sd = cv * mean / sqrt(n).
    spread = profile.coefficient_of_variation / math.sqrt(requests)
    factor = 1.0 + spread * _NORMAL_TABLE[int(rng.random() * _NORMAL_LEVELS)]
    mean = profile.mean_ms * factor if factor > 0 else 0.0
    return VariantBucket(requests, errors, codes, requests * mean, profile)


@dataclass
class VariantStats:
    """A variant's traffic over a window or since the start; rates are None without requests."""

    requests: int = 0
    errors: int = 0
    codes: tuple[int, int, int] = (0, 0, 0)
    latency_sum_ms: float = 0.0
    profiles: dict[LatencyProfile, int] = field(default_factory=dict)

    def add(self, part: VariantBucket) -> None:
        # The hot loop of every window and of the totals: keep it lean.
        requests = part.requests
        if not requests:
            return
        self.requests += requests
        if part.errors:
            self.errors += part.errors
            mine, theirs = self.codes, part.codes
            self.codes = (mine[0] + theirs[0], mine[1] + theirs[1], mine[2] + theirs[2])
        self.latency_sum_ms += part.latency_sum_ms
        key = part.profile
        if key is not None:
            self.profiles[key] = self.profiles.get(key, 0) + requests

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
    """The last hour of buckets, oldest first.

    Reports computed from the buckets can be memoised with ``cached`` until the next
    bucket arrives: a tick of a simulation asks several endpoints for the same windows.
    What ``stats`` and ``cached`` return is shared and must be treated as read-only.
    """

    def __init__(self, seconds: float = HISTORY_SECONDS):
        self._buckets: deque[Bucket] = deque(maxlen=math.ceil(seconds / BUCKET_SECONDS))
        self._memo: dict[Any, Any] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def append(self, bucket: Bucket) -> None:
        self._buckets.append(bucket)
        self._memo.clear()

    def last(self, seconds: float) -> list[Bucket]:
        """The buckets of the last ``seconds``, oldest first."""
        count = min(len(self._buckets), math.ceil(seconds / BUCKET_SECONDS - 1e-9))
        return list(itertools.islice(self._buckets, len(self._buckets) - count, None))

    def stats(self, seconds: float) -> dict[str, VariantStats]:
        return self.cached(("stats", seconds), lambda: summarize(self.last(seconds)))

    def cached(self, key: Any, compute: Callable[[], T]) -> T:
        """``compute()``, remembered under ``key`` until the next bucket is appended."""
        if key not in self._memo:
            self._memo[key] = compute()
        found: T = self._memo[key]
        return found


def summarize(buckets: Iterable[Bucket]) -> dict[str, VariantStats]:
    legacy, modern = VariantStats(), VariantStats()
    add_legacy, add_modern = legacy.add, modern.add
    for bucket in buckets:
        add_legacy(bucket.legacy)
        add_modern(bucket.modern)
    return {"legacy": legacy, "modern": modern}

"""The simulated brain API's state: routing, the A/B test, flags, memory and alerts.

Routing, i.e. who answers a user request:

- flag ``USE_MODERN_BRAIN_API`` enabled: modern answers everything (100%);
- otherwise an A/B test that is running and enabled: modern answers ``rolloutPercentage``%;
- otherwise legacy answers everything.

Disabling ``USE_MODERN_BRAIN_API`` is the kill switch: it also stops a running A/B test.
``emergency-stop`` stops the test and sets its percentage to 0. Deleting the flag only
removes the override, so a running A/B test decides again. A stopped or rolled-back test
cannot be updated (409); start a new one.

Auto-rollback: once a simulated minute, a running test with ``enableAutoRollback``
compares modern's last ``auto_rollback_window`` (default 5m, at least
``auto_rollback_min_requests`` requests) against its own limits: error rate above
``maxErrorRate``, success rate below ``minSuccessRate``, p95 latency above
``maxResponseTime``. A breach seen in every check for ``auto_rollback_sustain`` (default
15m) rolls the test back: it becomes ``rolled-back`` with percentage 0 and
the reason, the modern flag is switched off, and a critical alert is raised.

Everything is lazy: traffic is generated up to ``clock.now()`` whenever anyone asks, so
the model never runs on its own and reads time only from its clock. One re-entrant lock
(``model.lock``) guards all of it.
"""

from __future__ import annotations

import functools
import math
import random
import threading
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Concatenate, ParamSpec, TypeVar

from rollout_cli.sandbox.abtest import (
    ROLLED_BACK,
    RUNNING,
    STOPPED,
    AbTest,
    AbTestConfig,
    Conflict,
    breach_reason,
)
from rollout_cli.sandbox.alerts import Alert, memory_alerts, traffic_alerts
from rollout_cli.sandbox.clock import Clock
from rollout_cli.sandbox.latency import LatencyProfile
from rollout_cli.sandbox.scenarios import Scenario
from rollout_cli.sandbox.traffic import (
    _CYCLE,
    _EXACT_BELOW_VARIANCE,
    _FULL,
    _NORMAL_LEVELS,
    _NORMAL_TABLE,
    _PARTIAL,
    BUCKET_SECONDS,
    VARIANTS,
    Bucket,
    History,
    VariantBucket,
    VariantStats,
    draw_binomial,
    draw_poisson,
    error_code_at,
)

MODERN_FLAG = "USE_MODERN_BRAIN_API"
EVENT_ALERT_SECONDS = 3600.0  # emergency and auto-rollback alerts stay listed this long
_BUCKETS_PER_MINUTE = round(60 / BUCKET_SECONDS)  # auto-rollback checks once a simulated minute

_NO_CODES = (0, 0, 0)

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Heap:
    base_mb: float
    leak_per_bucket: float  # MB leaked per bucket of traffic
    garbage_mb: float = 0.0
    leaked_mb: float = 0.0

    @property
    def total_mb(self) -> float:
        return self.base_mb + self.garbage_mb + self.leaked_mb

    def grow(self, served: int, garbage_mb: float, gc_threshold_mb: float) -> float:
        """One bucket: garbage piles up and leaks grow while it serves; the heap at its end."""
        if served:
            self.garbage_mb += garbage_mb
            self.leaked_mb += self.leak_per_bucket
            if self.garbage_mb > gc_threshold_mb:
                self.garbage_mb = 0.0  # the runtime's own collector ran
        return self.base_mb + self.garbage_mb + self.leaked_mb


class _VariantDraw:
    """What ``draw_variant`` reads of a behaviour (success rate, latency profile), read once."""

    __slots__ = ("_terms", "cv", "error_p", "exact", "inversions", "mean_ms", "profile")

    def __init__(self, success_rate: float, profile: LatencyProfile):
        self.profile = profile
        self.error_p = 1.0 - success_rate
        # draw_binomial's own cases: only 0 < p <= 0.5 gets past its first checks
        self.exact = 0 < self.error_p <= 0.5
        self.cv = profile.coefficient_of_variation
        self.mean_ms = profile.mean_ms
        # draw_binomial's inversion for n draws, as far as it has gone: its running sums
        # (the same floats, made by the same operations) and its last term. A draw is
        # then the first sum not below u; the loop only runs past the known ones.
        self.inversions: dict[int, list[float]] = {}
        self._terms: dict[int, float] = {}

    def inversion(self, n: int) -> list[float]:
        if len(self.inversions) >= 4096:
            self.inversions.clear()
            self._terms.clear()
        term = self._terms[n] = (1 - self.error_p) ** n
        found = self.inversions[n] = [term]
        return found

    def bucket(self, n: int, codes_row: Any, rng: random.Random) -> VariantBucket:
        """``draw_variant(rng, n, ...)`` for this behaviour: the same draws, in the same
        order, and the same bits (tests/sandbox/test_sandbox_generation.py)."""
        if n == 0:
            return VariantBucket(profile=self.profile)
        draw = rng.random
        p = self.error_p
        if self.exact:
            variance = n * p * (1 - p)
            if variance >= _EXACT_BELOW_VARIANCE:
                z = _NORMAL_TABLE[int(draw() * _NORMAL_LEVELS)]
                errors = min(n, max(0, round(n * p + math.sqrt(variance) * z)))
            else:
                u = draw()
                cumulative = self.inversions.get(n)
                if cumulative is None:
                    cumulative = self.inversion(n)
                errors = self.extend(n, u) if u > cumulative[-1] else bisect_left(cumulative, u)
        else:
            errors = draw_binomial(rng, n, p)
        if not errors:
            codes = _NO_CODES
        elif errors < _CYCLE:
            codes = codes_row[errors]
        else:
            cycles, rest = divmod(errors, _CYCLE)
            a, b, c = codes_row[rest]
            full0, full1, full2 = _FULL
            codes = (cycles * full0 + a, cycles * full1 + b, cycles * full2 + c)
        factor = 1.0 + self.cv / math.sqrt(n) * _NORMAL_TABLE[int(draw() * _NORMAL_LEVELS)]
        mean = self.mean_ms * factor if factor > 0 else 0.0
        return VariantBucket(n, errors, codes, n * mean, self.profile)

    def extend(self, n: int, u: float) -> int:
        """The draw for a u beyond the known sums, extending them as the loop goes."""
        p = self.error_p
        sums = self.inversions[n]
        k, term, cumulative = len(sums) - 1, self._terms[n], sums[-1]
        odds = p / (1 - p)
        while u > cumulative and k < n:
            term *= (n - k) / (k + 1) * odds
            k += 1
            cumulative += term
            sums.append(cumulative)
        self._terms[n] = term
        return k


@dataclass(frozen=True)
class UserAnswer:
    variant: str
    status: int
    latency_ms: float


@dataclass
class Baseline:
    taken_at: float
    window: float
    stats: dict[str, VariantStats] = field(default_factory=dict)


Method = Callable[Concatenate["BrainModel", P], R]


def _current(method: Method[P, R]) -> Method[P, R]:
    """Hold the lock and bring traffic up to the clock's now before answering."""

    @functools.wraps(method)
    def wrapper(self: BrainModel, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.lock:
            self.catch_up()
            return method(self, *args, **kwargs)

    return wrapper


class BrainModel:
    def __init__(self, scenario: Scenario, clock: Clock, seed: int = 0):
        self.scenario = scenario
        self.clock = clock
        self.seed = seed
        self.lock = threading.RLock()
        self._origin = clock.now()
        self._traffic_rng = random.Random(f"{seed}:traffic")
        self._live_rng = random.Random(f"{seed}:live")
        self._next_index = 0
        self.history = History()
        self._legacy_totals, self._modern_totals = VariantStats(), VariantStats()
        self.totals = {"legacy": self._legacy_totals, "modern": self._modern_totals}
        self._pending: dict[int, dict[str, VariantBucket]] = {}
        self._requests_per_bucket = scenario.requests_per_second * BUCKET_SECONDS
        hours_per_bucket = BUCKET_SECONDS / 3600.0
        self._garbage_per_bucket = scenario.memory.garbage_mb_per_hour * hours_per_bucket
        self._legacy_heap, self._modern_heap = (
            Heap(profile.heap_base_mb, profile.leak_mb_per_hour * hours_per_bucket)
            for profile in (scenario.legacy, scenario.modern)
        )
        self._heap = {"legacy": self._legacy_heap, "modern": self._modern_heap}
        self._profiles = self._latency_profiles(scenario)
        self._legacy_behaviour = (scenario.legacy.success_rate, self._profiles["legacy"])
        self._draws: dict[tuple[float, LatencyProfile], _VariantDraw] = {}
        self.ab_test: AbTest | None = None
        self.flags: dict[str, bool] = {MODERN_FLAG: False}
        self.dashboard_started_at: float | None = None
        self.memory_managed_since: float | None = None
        self.baseline: Baseline | None = None
        self.events: deque[Alert] = deque(maxlen=1000)
        self.modern_since: float | None = None
        self.auto_rollbacks = 0
        self._breach_since: float | None = None
        # Auto-rollback looks at modern per simulated minute, so a check sums a handful of
        # minute summaries instead of every bucket of its window.
        self._modern_minute = VariantStats()
        self._modern_minutes: deque[VariantStats] = deque(
            maxlen=round(scenario.auto_rollback_window / 60.0)
        )

    @staticmethod
    def _latency_profiles(scenario: Scenario) -> dict[str, LatencyProfile]:
        profiles = {"legacy": scenario.legacy.latency, "modern": scenario.modern.latency}
        if scenario.degradation is not None:
            profiles["degraded"] = profiles["modern"].scaled(scenario.degradation.latency_factor)
        return profiles

    # --- time and traffic -------------------------------------------------------------

    def elapsed(self) -> float:
        """Simulated seconds since the sandbox started."""
        return self.clock.now() - self._origin

    def catch_up(self) -> None:
        """Generate the traffic of every bucket completed by now (call under the lock)."""
        complete = math.floor(self.elapsed() / BUCKET_SECONDS + 1e-9)
        if self._next_index < complete:
            self._generate(complete)

    def _generate(self, complete: int) -> None:
        """The buckets from ``_next_index`` up to ``complete``.

        The hot loop of every simulation (a simulated day is 8,640 buckets), so it is one
        function: ``draw_poisson``, ``draw_binomial``, ``draw_variant``, ``Heap.grow`` and
        ``VariantStats.add`` spelled out on locals, with the same operations in the same
        order, so the same bits, and the same random draws in the same order, which is
        what a seed replays (tests/sandbox/test_sandbox_generation.py checks it against
        those functions).
        """
        # Only handlers change the memory settings and the routing, and none runs while
        # we catch up; only an auto-rollback check (once a simulated minute) may reroute.
        gc_threshold = self._gc_threshold_mb()
        rng = self._traffic_rng
        random = rng.random
        table, levels, sqrt = _NORMAL_TABLE, _NORMAL_LEVELS, math.sqrt
        partial = _PARTIAL
        per_bucket = self._requests_per_bucket
        poisson_sd = math.sqrt(per_bucket) if per_bucket >= 30 else 0.0
        garbage_mb = self._garbage_per_bucket
        lheap, mheap = self._legacy_heap, self._modern_heap
        l_base, l_leak, l_garbage, l_leaked = (
            lheap.base_mb, lheap.leak_per_bucket, lheap.garbage_mb, lheap.leaked_mb)
        m_base, m_leak, m_garbage, m_leaked = (
            mheap.base_mb, mheap.leak_per_bucket, mheap.garbage_mb, mheap.leaked_mb)
        legacy_draw = self._draw(*self._legacy_behaviour)
        lt, mt, mm = self._legacy_totals, self._modern_totals, self._modern_minute
        lt_requests, lt_errors, (lt_c0, lt_c1, lt_c2), lt_latency, lt_profiles = (
            lt.requests, lt.errors, lt.codes, lt.latency_sum_ms, lt.profiles)
        mt_requests, mt_errors, (mt_c0, mt_c1, mt_c2), mt_latency, mt_profiles = (
            mt.requests, mt.errors, mt.codes, mt.latency_sum_ms, mt.profiles)
        mm_requests, mm_errors, (mm_c0, mm_c1, mm_c2), mm_latency, mm_profiles = (
            mm.requests, mm.errors, mm.codes, mm.latency_sum_ms, mm.profiles)
        pending = self._pending
        append = self.history.append
        routing = True  # the routing below is to be (re)read
        share = 0.0
        split_p = 0.0
        flip = False
        spike_at = math.inf
        modern_draw = before_spike = after_spike = legacy_draw
        index = self._next_index
        try:
            while index < complete:
                start = index * BUCKET_SECONDS
                if routing:
                    routing = False
                    share = self.modern_percentage()
                    if share > 0 and self.modern_since is None:
                        self.modern_since = start
                    # draw_binomial(rng, n, share / 100.0), flipped above one half
                    split_p = share / 100.0
                    flip = split_p > 0.5
                    if flip and split_p < 1:
                        split_p = 1 - split_p
                    before_spike, spike_at, after_spike = self._modern_phases(share)
                modern_draw = after_spike if start >= spike_at else before_spike

                # draw_poisson(rng, per_bucket)
                if per_bucket >= 30:
                    total = round(per_bucket + poisson_sd * table[int(random() * levels)])
                    if total < 0:
                        total = 0
                elif per_bucket <= 0:
                    total = 0
                else:
                    total = draw_poisson(rng, per_bucket)

                # draw_binomial(rng, total, share / 100.0)
                if total <= 0 or split_p <= 0:
                    modern_n = 0
                elif split_p >= 1:
                    modern_n = total
                else:
                    variance = total * split_p * (1 - split_p)
                    if variance >= _EXACT_BELOW_VARIANCE:
                        z = table[int(random() * levels)]
                        modern_n = min(total, max(0, round(total * split_p + sqrt(variance) * z)))
                    else:
                        modern_n = draw_binomial(rng, total, split_p)
                    if flip:
                        modern_n = total - modern_n
                codes_row = partial[index % _CYCLE]

                # draw_variant(rng, n, *behaviour, index), legacy's draws first
                legacy = legacy_draw.bucket(total - modern_n, codes_row, rng)
                modern = modern_draw.bucket(modern_n, codes_row, rng)

                if pending:
                    live = pending.pop(index, None)
                    if live:
                        legacy.add(live.get("legacy", VariantBucket()))
                        modern.add(live.get("modern", VariantBucket()))

                # Heap.grow, then VariantStats.add into the totals (and modern's minute)
                n = legacy.requests
                if n:
                    l_garbage += garbage_mb
                    l_leaked += l_leak
                    if l_garbage > gc_threshold:
                        l_garbage = 0.0
                    lt_requests += n
                    errors = legacy.errors
                    if errors:
                        lt_errors += errors
                        c0, c1, c2 = legacy.codes
                        lt_c0 += c0
                        lt_c1 += c1
                        lt_c2 += c2
                    lt_latency += legacy.latency_sum_ms
                    key = legacy.profile
                    if key is not None:
                        lt_profiles[key] = lt_profiles.get(key, 0) + n
                legacy.heap_mb = l_base + l_garbage + l_leaked
                n = modern.requests
                if n:
                    m_garbage += garbage_mb
                    m_leaked += m_leak
                    if m_garbage > gc_threshold:
                        m_garbage = 0.0
                    mt_requests += n
                    mm_requests += n
                    errors = modern.errors
                    if errors:
                        mt_errors += errors
                        mm_errors += errors
                        c0, c1, c2 = modern.codes
                        mt_c0 += c0
                        mt_c1 += c1
                        mt_c2 += c2
                        mm_c0 += c0
                        mm_c1 += c1
                        mm_c2 += c2
                    latency = modern.latency_sum_ms
                    mt_latency += latency
                    mm_latency += latency
                    key = modern.profile
                    if key is not None:
                        mt_profiles[key] = mt_profiles.get(key, 0) + n
                        mm_profiles[key] = mm_profiles.get(key, 0) + n
                modern.heap_mb = m_base + m_garbage + m_leaked

                append(Bucket(index, start + BUCKET_SECONDS, legacy, modern))
                index += 1
                if index % _BUCKETS_PER_MINUTE == 0:
                    self._modern_minutes.append(VariantStats(
                        mm_requests, mm_errors, (mm_c0, mm_c1, mm_c2), mm_latency, mm_profiles))
                    mm_requests, mm_errors, mm_c0, mm_c1, mm_c2, mm_latency, mm_profiles = (
                        0, 0, 0, 0, 0, 0.0, {})
                    self._next_index = index
                    self._check_auto_rollback(start + BUCKET_SECONDS)
                    routing = True
        finally:
            self._next_index = index
            lheap.garbage_mb, lheap.leaked_mb = l_garbage, l_leaked
            mheap.garbage_mb, mheap.leaked_mb = m_garbage, m_leaked
            lt.requests, lt.errors, lt.codes, lt.latency_sum_ms = (
                lt_requests, lt_errors, (lt_c0, lt_c1, lt_c2), lt_latency)
            mt.requests, mt.errors, mt.codes, mt.latency_sum_ms = (
                mt_requests, mt_errors, (mt_c0, mt_c1, mt_c2), mt_latency)
            self._modern_minute = VariantStats(
                mm_requests, mm_errors, (mm_c0, mm_c1, mm_c2), mm_latency, mm_profiles)

    def _modern_phases(self, share: float) -> tuple[_VariantDraw, float, _VariantDraw]:
        """How modern draws before ``spike_at`` and from then on, at this share."""
        before = self._draw(*self._modern_behaviour(share, -math.inf))
        spike, since = self.scenario.error_spike, self.modern_since
        if spike is None or since is None:
            return before, math.inf, before
        return before, since + spike.after, self._draw(*self._modern_behaviour(share, math.inf))

    def _draw(self, success_rate: float, profile: LatencyProfile) -> _VariantDraw:
        key = (success_rate, profile)
        found = self._draws.get(key)
        if found is None:
            found = self._draws[key] = _VariantDraw(success_rate, profile)
        return found

    def _behaviour(self, variant: str, share: float, t: float) -> tuple[float, LatencyProfile]:
        """Success probability and latency profile of a variant at simulated time t."""
        if variant == "legacy":
            return self._legacy_behaviour
        return self._modern_behaviour(share, t)

    def _modern_behaviour(self, share: float, t: float) -> tuple[float, LatencyProfile]:
        success, profile = self.scenario.modern.success_rate, self._profiles["modern"]
        degradation = self.scenario.degradation
        if degradation is not None and share >= degradation.at_percentage:
            success = max(0.0, success - degradation.success_drop)
            profile = self._profiles["degraded"]
        spike = self.scenario.error_spike
        since = self.modern_since
        if spike is not None and since is not None and t >= since + spike.after:
            success = min(success, 1.0 - spike.error_rate)
        return success, profile

    def _gc_threshold_mb(self) -> float:
        memory = self.scenario.memory
        managed = self.memory_managed_since is not None
        return memory.managed_gc_threshold_mb if managed else memory.gc_threshold_mb

    # --- routing and the A/B test -----------------------------------------------------

    def modern_percentage(self) -> float:
        """The share of user traffic modern answers right now, 0..100."""
        if self.flags.get(MODERN_FLAG):
            return 100.0
        return self.ab_test.routed_percentage if self.ab_test is not None else 0.0

    @_current
    def start_ab_test(self, config: AbTestConfig) -> tuple[AbTest, bool]:
        """Start a test; (test, created). Starting the running test again unchanged is a no-op."""
        test = self.ab_test
        if test is not None and test.status == RUNNING:
            if test.config == config:
                return test, False
            raise Conflict(
                f"A/B test {test.config.test_id!r} is already running; "
                "use update to change it or stop it first"
            )
        self.ab_test = AbTest(config, started_at=self.elapsed())
        return self.ab_test, True

    @_current
    def update_ab_test(self, **changes: Any) -> AbTest:
        test = self._require_test()
        if test.status == ROLLED_BACK:
            raise Conflict(
                f"A/B test {test.config.test_id!r} was rolled back automatically "
                f"({test.rollback_reason}); start a new test to continue"
            )
        if test.status == STOPPED:
            raise Conflict(f"A/B test {test.config.test_id!r} is stopped; start a new test")
        test.config = replace(test.config, **changes)
        return test

    @_current
    def stop_ab_test(self, *, emergency: bool = False) -> AbTest | None:
        """Stop the test (idempotent; None when none was ever started)."""
        test = self.ab_test
        if test is None:
            return None
        if test.status == RUNNING:
            test.status, test.stopped_at = STOPPED, self.elapsed()
        if emergency:
            test.emergency = True
            test.config = replace(test.config, rollout_percentage=0.0, enabled=False)
        return test

    def _require_test(self) -> AbTest:
        if self.ab_test is None:
            raise Conflict("no A/B test has been started")
        return self.ab_test

    def _check_auto_rollback(self, t: float) -> None:
        test = self.ab_test
        if test is None or test.status != RUNNING or not test.config.enable_auto_rollback:
            return
        # What breach_reason reads of modern's window (requests, errors, profiles), summed
        # as VariantStats.absorb sums it.
        requests = errors = 0
        profiles: dict[LatencyProfile, int] = {}
        for minute in self._modern_minutes:
            requests += minute.requests
            errors += minute.errors
            for profile, n in minute.profiles.items():
                profiles[profile] = profiles.get(profile, 0) + n
        window = 60.0 * len(self._modern_minutes)
        if requests < self.scenario.auto_rollback_min_requests:
            self._breach_since = None
            return
        modern = VariantStats(requests, errors, profiles=profiles)
        reason = breach_reason(test.config, modern, window)
        if reason is None:
            self._breach_since = None
            return
        if self._breach_since is None:
            self._breach_since = t
        if t - self._breach_since < self.scenario.auto_rollback_sustain:
            return
        self._breach_since = None
        test.status, test.stopped_at, test.rollback_reason = ROLLED_BACK, t, reason
        test.config = replace(test.config, rollout_percentage=0.0)
        if self.flags.get(MODERN_FLAG):
            self.flags[MODERN_FLAG] = False  # a forced 100% would defeat the rollback
        self.auto_rollbacks += 1
        message = f"A/B test {test.config.test_id!r} rolled back automatically: {reason}"
        self.events.append(Alert("critical", "auto-rollback", message, t, "modern"))

    # --- flags ------------------------------------------------------------------------

    @_current
    def set_flag(self, name: str, value: bool) -> None:
        self.flags[name] = value
        if name == MODERN_FLAG and not value:
            self.stop_ab_test()  # the kill switch: nothing may route to modern

    @_current
    def delete_flag(self, name: str) -> bool:
        return self.flags.pop(name, None) is not None

    # --- dashboard, memory, alerts ----------------------------------------------------

    @_current
    def start_dashboard(self) -> float:
        if self.dashboard_started_at is None:
            self.dashboard_started_at = self.elapsed()
        return self.dashboard_started_at

    @_current
    def update_baselines(self, window: float) -> Baseline:
        self.baseline = Baseline(self.elapsed(), window, self.history.stats(window))
        return self.baseline

    @_current
    def start_memory_management(self) -> float:
        if self.memory_managed_since is None:
            self.memory_managed_since = self.elapsed()
        return self.memory_managed_since

    @_current
    def cleanup_memory(self) -> dict[str, float]:
        """Collect garbage now; leaked memory stays (that is what makes it a leak)."""
        freed = {name: heap.garbage_mb for name, heap in self._heap.items()}
        for heap in self._heap.values():
            heap.garbage_mb = 0.0
        return freed

    @_current
    def heap_mb(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "heapMb": heap.total_mb,
                "garbageMb": heap.garbage_mb,
                "leakedMb": heap.leaked_mb,
            }
            for name, heap in self._heap.items()
        }

    @_current
    def raise_emergency_alert(self, message: str) -> Alert:
        alert = Alert("critical", "emergency", message, self.elapsed())
        self.events.append(alert)
        return alert

    @_current
    def alerts(self, window: float) -> list[Alert]:
        now = self.elapsed()
        found = [e for e in self.events if now - e.raised_at <= EVENT_ALERT_SECONDS]
        stats = self.history.stats(window)
        heap = self.heap_mb()
        for name in VARIANTS:
            found += traffic_alerts(name, stats[name], self.scenario.thresholds, now)
            found += memory_alerts(name, heap[name]["heapMb"], self.scenario.memory, now)
        return found

    # --- reading traffic --------------------------------------------------------------

    @_current
    def window_stats(self, window: float) -> dict[str, VariantStats]:
        return self.history.stats(window)

    @_current
    def buckets(self, window: float) -> list[Bucket]:
        return self.history.last(window)

    @_current
    def memo(self, key: Any, compute: Callable[[], R]) -> R:
        """A report computed from the traffic so far, reused until the next bucket."""
        return self.history.cached(key, compute)

    @_current
    def cumulative(self) -> dict[str, VariantStats]:
        return {name: stats.copy() for name, stats in self.totals.items()}

    # --- the user route ---------------------------------------------------------------

    @_current
    def serve_user_request(self) -> UserAnswer:
        """Answer one real request on /api/brain; it joins the traffic of the current bucket."""
        share, now, rng = self.modern_percentage(), self.elapsed(), self._live_rng
        variant = "modern" if rng.random() * 100.0 < share else "legacy"
        answer = self._answer(variant, share, now)
        status = answer.status
        codes = (int(status == 500), int(status == 503), int(status == 504))
        index = math.floor(now / BUCKET_SECONDS + 1e-9)
        pending = self._pending.setdefault(index, {}).setdefault(variant, VariantBucket())
        pending.add(VariantBucket(1, int(status != 200), codes, answer.latency_ms))
        return answer

    @_current
    def probe(self) -> dict[str, UserAnswer]:
        """One test request to each implementation, outside the user traffic."""
        share, now = self.modern_percentage(), self.elapsed()
        return {name: self._answer(name, share, now) for name in VARIANTS}

    def _answer(self, variant: str, share: float, now: float) -> UserAnswer:
        success, profile = self._behaviour(variant, share, now)
        rng = self._live_rng
        ok = rng.random() < success
        status = 200 if ok else error_code_at(rng.randrange(20))
        return UserAnswer(variant, status, profile.sample(rng))

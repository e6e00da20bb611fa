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
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Concatenate, ParamSpec, TypeVar

from rollout_cli.clock import Clock
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
from rollout_cli.sandbox.latency import LatencyProfile
from rollout_cli.sandbox.scenarios import Scenario
from rollout_cli.sandbox.traffic import (
    BUCKET_SECONDS,
    ERROR_CODES,
    ERROR_SHARES,
    VARIANTS,
    Behaviour,
    Bucket,
    History,
    VariantBucket,
    VariantStats,
    draw_variant,
)

MODERN_FLAG = "USE_MODERN_BRAIN_API"
DASHBOARD, MEMORY_MANAGEMENT = "dashboard", "memory-management"  # what can be started
EVENT_ALERT_SECONDS = 3600.0  # emergency and auto-rollback alerts stay listed this long

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

    def grow(self, garbage_mb: float, gc_threshold_mb: float) -> None:
        """One bucket of serving traffic: garbage piles up and leaks grow."""
        self.garbage_mb += garbage_mb
        self.leaked_mb += self.leak_per_bucket
        if self.garbage_mb > gc_threshold_mb:
            self.garbage_mb = 0.0  # the runtime's own collector ran


@dataclass(frozen=True)
class HeapSample:
    time: float  # simulated seconds since the sandbox started
    legacy_mb: float
    modern_mb: float


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
        self.totals = {name: VariantStats() for name in VARIANTS}
        self.heap_samples: deque[HeapSample] = deque(maxlen=60)  # one a minute, the last hour
        self._pending: dict[int, dict[str, VariantBucket]] = {}  # live requests by bucket
        self._requests_per_bucket = scenario.requests_per_second * BUCKET_SECONDS
        hours_per_bucket = BUCKET_SECONDS / 3600.0
        self._garbage_per_bucket = scenario.memory.garbage_mb_per_hour * hours_per_bucket
        self._heap = {
            name: Heap(profile.heap_base_mb, profile.leak_mb_per_hour * hours_per_bucket)
            for name, profile in (("legacy", scenario.legacy), ("modern", scenario.modern))
        }
        self._profiles = self._latency_profiles(scenario)
        self._jitter_profiles: dict[tuple[int, float], LatencyProfile] = {}
        self._legacy_behaviour = Behaviour(scenario.legacy.success_rate, self._profiles["legacy"])
        self.ab_test: AbTest | None = None
        self.flags: dict[str, bool] = {MODERN_FLAG: False}
        self.started: dict[str, float] = {}  # DASHBOARD, MEMORY_MANAGEMENT: since when
        self.baseline: Baseline | None = None
        self.events: deque[Alert] = deque(maxlen=1000)
        self.modern_since: float | None = None
        self.auto_rollbacks = 0
        self._breach_since: float | None = None

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
        while self._next_index < complete:
            self._generate(self._next_index)
            self._next_index += 1

    def _generate(self, index: int) -> None:
        """One bucket: the traffic drawn for the routing of the moment, the live requests
        answered in it, the heaps growing while they serve; at the end of a minute, a heap
        sample and the auto-rollback check."""
        start, end = index * BUCKET_SECONDS, (index + 1) * BUCKET_SECONDS
        share = self.modern_percentage()
        if share > 0 and self.modern_since is None:
            self.modern_since = start
        expected = self._requests_per_bucket
        parts = {
            "legacy": draw_variant(self._traffic_rng, expected * (100.0 - share) / 100.0,
                                   self._jittered(self._legacy_behaviour)),
            "modern": draw_variant(self._traffic_rng, expected * share / 100.0,
                                   self._jittered(self._modern_behaviour(share, start))),
        }
        live = self._pending.pop(index, {})
        for name, part in parts.items():
            if name in live:
                part.add(live[name])
            if part.requests:
                self._heap[name].grow(self._garbage_per_bucket, self._gc_threshold_mb())
            self.totals[name].add(part)
        self.history.append(Bucket(index, end, parts["legacy"], parts["modern"]))
        if end % 60 == 0:
            legacy, modern = (self._heap[name].total_mb for name in VARIANTS)
            self.heap_samples.append(HeapSample(end, legacy, modern))
            self._check_auto_rollback(end)

    def _jittered(self, behaviour: Behaviour) -> Behaviour:
        """With ``latency_jitter``, a bucket's response times all slower or faster by a
        log-normal factor (a busy host, a cold cache), in steps of a quarter of a standard
        deviation so that a window's percentile mixes a bounded number of profiles."""
        jitter = self.scenario.latency_jitter
        if jitter <= 0:
            return behaviour
        step = round(max(-3.0, min(3.0, self._traffic_rng.gauss(0.0, 1.0))) * 4) / 4
        key = (id(behaviour.latency), step)
        profile = self._jitter_profiles.get(key)
        if profile is None:
            profile = self._jitter_profiles[key] = behaviour.latency.scaled(
                math.exp(jitter * step))
        return Behaviour(behaviour.success_rate, profile)

    def _behaviour(self, variant: str, share: float, t: float) -> Behaviour:
        """How a variant answers at simulated time t."""
        if variant == "legacy":
            return self._legacy_behaviour
        return self._modern_behaviour(share, t)

    def _modern_behaviour(self, share: float, t: float) -> Behaviour:
        success, profile = self.scenario.modern.success_rate, self._profiles["modern"]
        degradation = self.scenario.degradation
        if degradation is not None and share >= degradation.at_percentage:
            success = max(0.0, success - degradation.success_drop)
            profile = self._profiles["degraded"]
        spike = self.scenario.error_spike
        since = self.modern_since
        if spike is not None and since is not None and t >= since + spike.after:
            success = min(success, 1.0 - spike.error_rate)
        return Behaviour(success, profile)

    def _gc_threshold_mb(self) -> float:
        memory = self.scenario.memory
        managed = MEMORY_MANAGEMENT in self.started
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
        window = self.scenario.auto_rollback_window
        modern = VariantStats()
        for bucket in self.history.last(window):
            modern.add(bucket.modern)
        reason = None
        if modern.requests >= self.scenario.auto_rollback_min_requests:
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
    def start(self, service: str) -> float:
        """Start the dashboard or memory management (starting it again changes nothing);
        since when it runs."""
        return self.started.setdefault(service, self.elapsed())

    @_current
    def update_baselines(self, window: float) -> Baseline:
        self.baseline = Baseline(self.elapsed(), window, self.history.stats(window))
        return self.baseline

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
        bucket = self._pending.setdefault(index, {}).setdefault(variant, VariantBucket())
        bucket.add(VariantBucket(1, int(status != 200), codes, answer.latency_ms))
        return answer

    @_current
    def probe(self) -> dict[str, UserAnswer]:
        """One test request to each implementation, outside the user traffic."""
        share, now = self.modern_percentage(), self.elapsed()
        return {name: self._answer(name, share, now) for name in VARIANTS}

    def _answer(self, variant: str, share: float, now: float) -> UserAnswer:
        behaviour, rng = self._behaviour(variant, share, now), self._live_rng
        ok = rng.random() < behaviour.success_rate
        status = 200 if ok else rng.choices(ERROR_CODES, ERROR_SHARES)[0]
        return UserAnswer(variant, status, behaviour.latency.sample(rng))

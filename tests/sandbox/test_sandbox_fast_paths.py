"""The sandbox's shortcuts answer what the plain code they replace answers, bit for bit."""

from __future__ import annotations

import json
import math
import random

import pytest

from rollout_cli.sandbox import PRESETS, BrainModel, VirtualClock
from rollout_cli.sandbox.abtest import AbTestConfig
from rollout_cli.sandbox.latency import LatencyProfile, _bisect_quantile
from rollout_cli.sandbox.routing import dumps


@pytest.mark.parametrize("value", [
    {"a": 1.5, "b": [1, 2.25, None, True, False], "c": {"d": "é\n\"x\"", "e": -0.0}},
    [float("nan"), float("inf"), -float("inf"), 1e300, 1e-7, 10**30],
    "text", 3, 0.1, None, {}, [], {"nested": [{"deep": [[]]}]},
])
def test_dumps_is_json_dumps(value: object) -> None:
    assert dumps(value) == json.dumps(value)


def test_dumps_refuses_what_json_dumps_refuses() -> None:
    with pytest.raises(TypeError):
        dumps({"x": object()})


def _plain_bisect(present: dict[LatencyProfile, int], q: float) -> float:
    """The bisection as LatencyProfile.cdf spells it."""
    total = sum(present.values())
    spread = 6 * max(p.sigma for p in present)
    low = min(p.mu for p in present) - spread
    high = max(p.mu for p in present) + spread
    for _ in range(60):
        middle = (low + high) / 2
        below = sum(n * p.cdf(math.exp(middle)) for p, n in present.items()) / total
        low, high = (middle, high) if below < q else (low, middle)
    return math.exp((low + high) / 2)


def test_the_two_profile_bisection_is_the_plain_one() -> None:
    rng = random.Random(7)
    for _ in range(500):
        profiles = [LatencyProfile(mean, mean * rng.uniform(1.1, 3.7))
                    for mean in (rng.uniform(5, 9000) for _ in range(rng.choice((2, 3))))]
        present = {p: rng.randint(1, 5000) for p in profiles}
        q = rng.choice((0.5, 0.95, 0.99))
        assert _bisect_quantile(present, q) == _plain_bisect(present, q)


def test_history_views_are_views_of_its_buckets() -> None:
    clock = VirtualClock(0.0)
    model = BrainModel(PRESETS["memory-leak"], clock, 3)
    model.start_ab_test(AbTestConfig("t", "t", 40.0))
    history = model.history
    for step in range(30):
        clock.advance(97.0 + 311.0 * step)
        model.catch_up()
        for seconds in (10.0, 35.0, 300.0, 1800.0, 3600.0):
            buckets = history.last(seconds)
            assert history.count(seconds) == len(buckets)
            legacy, modern = history.heaps(seconds)
            assert legacy == [b.legacy.heap_mb for b in buckets]
            assert modern == [b.modern.heap_mb for b in buckets]
            for step_size, remainder in ((6, 5), (6, 0), (4, 1)):
                assert history.every(seconds, step_size, remainder) == [
                    b for b in buckets if b.index % step_size == remainder]
        rows = history.rows("test", history.last(600.0), lambda b: (b.index, b.end))
        assert rows == [(b.index, b.end) for b in history.last(600.0)]

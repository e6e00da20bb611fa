"""The model's traffic loop (``BrainModel._generate``, spelled out on locals for speed)
draws exactly what the reference functions in ``traffic.py`` draw: same random draws in
the same order, same floats, bucket by bucket, through every branch of the draws."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from rollout_cli.sandbox import PRESETS, BrainModel, VirtualClock
from rollout_cli.sandbox.abtest import AbTestConfig, Conflict
from rollout_cli.sandbox.model import _BUCKETS_PER_MINUTE, MODERN_FLAG
from rollout_cli.sandbox.scenarios import ErrorSpike, Scenario, VariantProfile
from rollout_cli.sandbox.traffic import (
    BUCKET_SECONDS,
    Bucket,
    VariantBucket,
    VariantStats,
    draw_binomial,
    draw_poisson,
    draw_variant,
)

HEALTHY = PRESETS["healthy"]


def _reference_generate(model: BrainModel, complete: int) -> None:
    """The bucket loop as it was written with the reference functions, one call each."""
    gc_threshold = model._gc_threshold_mb()
    while model._next_index < complete:
        index = model._next_index
        start = index * BUCKET_SECONDS
        share = model.modern_percentage()
        if share > 0 and model.modern_since is None:
            model.modern_since = start
        rng = model._traffic_rng
        total = draw_poisson(rng, model._requests_per_bucket)
        modern_requests = draw_binomial(rng, total, share / 100.0)
        legacy = draw_variant(rng, total - modern_requests, *model._legacy_behaviour, index)
        modern = draw_variant(rng, modern_requests, *model._modern_behaviour(share, start),
                              index)
        if model._pending:
            live = model._pending.pop(index, {})
            legacy.add(live.get("legacy", VariantBucket()))
            modern.add(live.get("modern", VariantBucket()))
        garbage = model._garbage_per_bucket
        legacy.heap_mb = model._legacy_heap.grow(legacy.requests, garbage, gc_threshold)
        modern.heap_mb = model._modern_heap.grow(modern.requests, garbage, gc_threshold)
        model._legacy_totals.add(legacy)
        model._modern_totals.add(modern)
        model._modern_minute.add(modern)
        model.history.append(Bucket(index, start + BUCKET_SECONDS, legacy, modern))
        if (index + 1) % _BUCKETS_PER_MINUTE == 0:
            model._modern_minutes.append(model._modern_minute)
            model._modern_minute = VariantStats()
            model._check_auto_rollback(start + BUCKET_SECONDS)
        model._next_index += 1


def _stats(stats: VariantStats) -> tuple[Any, ...]:
    profiles = [(id(p), n) for p, n in stats.profiles.items()]
    return stats.requests, stats.errors, stats.codes, stats.latency_sum_ms.hex(), profiles


def _part(part: VariantBucket) -> tuple[Any, ...]:
    return (part.requests, part.errors, part.codes, part.latency_sum_ms.hex(),
            id(part.profile), part.heap_mb.hex())


def _state(model: BrainModel) -> dict[str, Any]:
    test = model.ab_test
    return {
        "next": model._next_index,
        "buckets": [(b.index, b.end, _part(b.legacy), _part(b.modern))
                    for b in model.history.last(3600.0)],
        "totals": [_stats(s) for s in model.totals.values()],
        "minute": _stats(model._modern_minute),
        "minutes": [_stats(s) for s in model._modern_minutes],
        "heap": {name: {k: v.hex() for k, v in heap.items()}
                 for name, heap in model.heap_mb().items()},
        "test": None if test is None else (test.status, test.stopped_at, test.rollback_reason,
                                           test.config.rollout_percentage),
        "flags": dict(model.flags),
        "since": model.modern_since,
        "events": [(e.kind, e.raised_at, e.message) for e in model.events],
        "rng": model._traffic_rng.getstate(),
    }


def _pair(scenario: Scenario, seed: int) -> tuple[BrainModel, BrainModel, VirtualClock]:
    """Two models on one clock: one generating with the model's loop, one with the
    reference loop (the profiles of both are the same objects, so ids compare)."""
    clock = VirtualClock(0.0)
    fast, slow = BrainModel(scenario, clock, seed), BrainModel(scenario, clock, seed)
    slow._profiles = fast._profiles
    slow._legacy_behaviour = fast._legacy_behaviour
    slow._generate = lambda complete: _reference_generate(slow, complete)  # type: ignore[method-assign]
    return fast, slow, clock


def _test(percentage: float, *, auto_rollback: bool = True) -> AbTestConfig:
    return AbTestConfig("t", "t", percentage, enable_auto_rollback=auto_rollback)


def _script(model: BrainModel, step: int) -> None:
    """The same handler calls on both models: tests, reroutes, flags, memory, users."""
    if step == 1:
        model.start_ab_test(_test(10))
    elif step == 3:
        model.start_memory_management()
    elif step == 4:
        model.update_ab_test(rollout_percentage=60.0)
    elif step == 6:
        model.set_flag(MODERN_FLAG, True)
    elif step == 7:
        model.cleanup_memory()
    elif step == 8:
        model.set_flag(MODERN_FLAG, False)
    elif step == 9:
        model.start_ab_test(_test(100))
    elif step == 11:
        model.stop_ab_test(emergency=True)
    elif step == 12:
        model.start_ab_test(_test(25, auto_rollback=False))
    if step % 2:
        for _ in range(3):
            model.serve_user_request()


SCENARIOS = {
    **{name: PRESETS[name] for name in
       ("healthy", "degrade-at-50", "error-spike", "memory-leak", "no-traffic")},
    # a Poisson by inversion, binomials by inversion and with an exact split
    "trickle": replace(HEALTHY, name="trickle", requests_per_second=0.7),
    "mid": replace(HEALTHY, name="mid", requests_per_second=2.5),
    # error probabilities above one half (flipped), zero and one
    "broken": replace(HEALTHY, name="broken",
                      modern=VariantProfile(0.3, 900.0, 2000.0, heap_base_mb=100.0),
                      legacy=VariantProfile(1.0, 900.0, 2000.0, heap_base_mb=100.0)),
    "dead": replace(HEALTHY, name="dead", requests_per_second=80.0,
                    modern=VariantProfile(0.0, 900.0, 2000.0, heap_base_mb=100.0)),
    # a spike the moment modern first serves, and many errors per bucket
    "instant-spike": replace(HEALTHY, name="instant-spike", requests_per_second=60.0,
                             error_spike=ErrorSpike(after=0.0, error_rate=0.6)),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
@pytest.mark.parametrize("seed", [0, 5])
def test_the_bucket_loop_draws_what_the_reference_functions_draw(name: str, seed: int) -> None:
    fast, slow, clock = _pair(SCENARIOS[name], seed)
    rollbacks = 0
    for step in range(14):
        refused = []
        for model in (fast, slow):
            with model.lock:
                model.catch_up()
                try:
                    _script(model, step)
                except Conflict as exc:  # a test that rolled itself back
                    refused.append(str(exc))
        assert len(refused) in (0, 2) and len(set(refused)) <= 1
        assert _state(fast) == _state(slow), f"after step {step}"
        rollbacks = fast.auto_rollbacks
        # uneven steps, so catch-ups end mid-minute and live requests land mid-bucket
        clock.advance(1234.5 + 61.0 * step)
    assert math.isfinite(fast.totals["legacy"].latency_sum_ms)
    if name in ("broken", "dead", "instant-spike"):
        assert rollbacks > 0  # the loop went through an auto-rollback and rerouted


def test_the_package_imports_its_http_server_only_when_asked() -> None:
    import subprocess
    import sys

    script = (
        "import sys, rollout_cli.sandbox as sandbox\n"
        "assert 'rollout_cli.sandbox.server' not in sys.modules\n"
        "assert 'running_sandbox' in dir(sandbox)\n"
        "from rollout_cli.sandbox import RunningSandbox, SandboxServer, running_sandbox\n"
        "from rollout_cli.sandbox import server\n"
        "assert (RunningSandbox, SandboxServer, running_sandbox) == "
        "(server.RunningSandbox, server.SandboxServer, server.running_sandbox)\n"
        "try:\n"
        "    sandbox.no_such_name\n"
        "except AttributeError:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('no AttributeError')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

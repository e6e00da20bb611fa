"""How fast the sandbox's model simulates long spans, and whether its memory stays flat.

    /work/venv/bin/python bench/sandbox_model.py

A 50% A/B test with auto-rollback runs under the healthy scenario, so both variants see
traffic and every simulated minute is checked against the test's limits.
"""

from __future__ import annotations

import time
import tracemalloc

from rollout_cli.sandbox import BrainModel, VirtualClock, load_scenario
from rollout_cli.sandbox.abtest import AbTestConfig
from rollout_cli.sandbox.traffic import BUCKET_SECONDS

HOUR = 3600.0
DAY = 24 * HOUR


def _model() -> tuple[BrainModel, VirtualClock]:
    clock = VirtualClock()
    model = BrainModel(load_scenario("healthy"), clock, seed=1)
    model.start_ab_test(AbTestConfig("bench", "bench", 50.0, enable_auto_rollback=True))
    return model, clock


def advance_time(span: float, repeats: int = 5) -> float:
    """Best wall time to advance a fresh model by ``span`` simulated seconds."""
    best = float("inf")
    for _ in range(repeats):
        model, clock = _model()
        clock.advance(span)
        started = time.perf_counter()
        with model.lock:
            model.catch_up()
        best = min(best, time.perf_counter() - started)
    return best


def memory_by_day(days: int = 7) -> list[tuple[int, int, int]]:
    """(day, traced bytes held at its end, peak bytes during it) for each simulated day."""
    tracemalloc.start()
    model, clock = _model()
    rows = []
    for day in range(1, days + 1):
        tracemalloc.reset_peak()
        clock.advance(DAY)
        with model.lock:
            model.catch_up()
        current, peak = tracemalloc.get_traced_memory()
        rows.append((day, current, peak))
    tracemalloc.stop()
    return rows


def main() -> None:
    for label, span in (("48 h", 48 * HOUR), ("7 days", 7 * DAY)):
        seconds = advance_time(span)
        buckets = int(span / BUCKET_SECONDS)
        per_bucket = seconds / buckets * 1e6
        print(f"advance {label:>6}: {seconds:.3f} s ({buckets} buckets, {per_bucket:.1f} us each)")
    print("memory held by the simulation (tracemalloc):")
    for day, current, peak in memory_by_day():
        print(f"  after day {day}: {current / 1024:8.0f} KiB held, {peak / 1024:8.0f} KiB peak")


if __name__ == "__main__":
    main()

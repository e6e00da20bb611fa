"""Measurements kept by a long bake: what a check's window needs, and memory to match."""

from __future__ import annotations

import tracemalloc

from rollout_cli.engine.checks import Sample
from rollout_cli.engine.measurements import Measurements


def test_a_series_keeps_what_its_window_needs_and_older_states_see_what_they_saw() -> None:
    first = Measurements().add("rate", Sample(0.0, 1.0), keep=20.0)
    later = first
    for n in range(1, 10):
        later = later.add("rate", Sample(n * 10.0, float(n)), keep=20.0)

    assert [s.value for s in later.of("rate")] == [7.0, 8.0, 9.0]
    assert [s.value for s in first.of("rate")] == [1.0]
    branched = first.add("rate", Sample(10.0, -1.0), keep=20.0)
    assert [s.value for s in branched.of("rate")] == [1.0, -1.0]
    assert [s.value for s in later.of("rate")] == [7.0, 8.0, 9.0]


def test_a_day_of_rounds_holds_memory_for_its_window_not_for_the_day() -> None:
    """An agent holds a hundred rollouts' measurements for days: samples that aged out of
    every window are let go, not kept by the thousand per metric."""
    def rounds(measurements: Measurements, hours: tuple[float, float]) -> Measurements:
        for n in range(int(hours[0] * 360), int(hours[1] * 360)):     # every 10 s
            measurements = measurements.add("rate", Sample(n * 10.0, 0.99), keep=20.0)
        return measurements

    tracemalloc.start()
    try:
        kept = rounds(Measurements(), (0, 0.5))
        after_half_an_hour, _ = tracemalloc.get_traced_memory()
        kept = rounds(kept, (0.5, 24.5))
        after_a_day, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(kept.of("rate")) == 3
    assert after_a_day - after_half_an_hour < 16_000      # bytes: a few samples' worth

"""Reconciler.record: each event is checked before it is journaled, then folded once."""

from __future__ import annotations

from typing import Any

import pytest

from rollout_cli.engine import RolloutState, fold
from rollout_cli.errors import IllegalTransition
from rollout_cli.reconcile.loop import Clock, Reconciler
from rollout_cli.reconcile.memory import MemoryMeta, MemoryRollout, MemoryStore


class Ticking:
    """A clock that moves on every reading, so the journal's time is never a trial's guess."""

    def __init__(self) -> None:
        self.time = 1000.0

    def now(self) -> float:
        self.time += 0.25
        return self.time


def reconciler(clock: Clock) -> tuple[Reconciler, list[dict[str, Any]]]:
    stored: list[dict[str, Any]] = []
    rollout = MemoryRollout(MemoryMeta("r-1", "plan"))
    found = Reconciler(MemoryStore(), rollout, None,  # type: ignore[arg-type]
                       clock=clock, on_event=lambda event, state: stored.append(event))
    return found, stored


EVENTS: list[dict[str, Any]] = [
    {"type": "created", "plan": "plan"},
    {"type": "stage-started", "stage": 0, "name": "one", "percentage": 10},
    {"type": "measured", "values": {"a": 1.0, "b": [2.0, 3.0]}, "errors": {}, "keep": {}},
    {"type": "measured", "values": {"a": 4.0}, "errors": {"b": "down"}, "keep": {}},
    {"type": "stage-completed", "stage": 0, "name": "one"},
]


@pytest.mark.parametrize("ticking", [False, True], ids=["still-clock", "ticking-clock"])
def test_record_folds_each_event_once_as_journaled(ticking: bool):
    clock = Clock(Ticking().now) if ticking else Clock(lambda: 1000.0)
    found, stored = reconciler(clock)

    for event in EVENTS:
        found.record(event)

    state = found.state
    assert state is not None
    replayed = fold(RolloutState(id="r-1", plan="plan"), stored)
    assert state == replayed
    assert [s.value for s in state.measurements.of("a")] == [1.0, 4.0]   # each sample once
    assert [s.value for s in state.measurements.of("b")] == [2.0, 3.0]
    assert state.seq == len(EVENTS) and state.updated == stored[-1]["time"]


def test_an_illegal_event_is_refused_before_it_is_journaled():
    found, stored = reconciler(Clock(lambda: 1000.0))
    found.record(EVENTS[0])

    with pytest.raises(IllegalTransition):
        found.record({"type": "created", "plan": "plan"})   # only a new rollout is created

    assert len(stored) == 1 and found.rollout.journal.seq == 1

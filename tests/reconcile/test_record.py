"""Reconciler.record: each event is checked before it is journaled, then folded once."""

from __future__ import annotations

from typing import Any

import pytest

from rollout_cli.clock import ProcessClock
from rollout_cli.engine import RolloutState, fold, from_json
from rollout_cli.errors import IllegalTransition
from rollout_cli.reconcile.loop import Reconciler
from rollout_cli.reconcile.memory import MemoryMeta, MemoryRollout, MemoryStore


class Ticking:
    """A clock that moves on every reading, so the journal's time is never a trial's guess."""

    def __init__(self) -> None:
        self.time = 1000.0

    def now(self) -> float:
        self.time += 0.25
        return self.time


def reconciler(clock: ProcessClock) -> tuple[Reconciler, list[dict[str, Any]]]:
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
    clock = ProcessClock(Ticking().now) if ticking else ProcessClock(lambda: 1000.0)
    found, stored = reconciler(clock)

    for event in EVENTS:
        found.record(from_json(event))

    state = found.state
    assert state is not None
    replayed = fold(RolloutState(id="r-1", plan="plan"), stored)
    assert state == replayed
    assert [s.value for s in state.measurements.of("a")] == [1.0, 4.0]   # each sample once
    assert [s.value for s in state.measurements.of("b")] == [2.0, 3.0]
    assert state.seq == len(EVENTS) and state.updated == stored[-1].time


def test_an_illegal_event_is_refused_before_it_is_journaled():
    found, stored = reconciler(ProcessClock(lambda: 1000.0))
    found.record(from_json(EVENTS[0]))

    with pytest.raises(IllegalTransition):
        found.record(from_json(EVENTS[0]))   # only a new rollout is created

    assert len(stored) == 1 and found.rollout.journal.seq == 1


def test_a_follower_is_shown_what_another_process_journaled(tmp_path):
    """Catching up shows an operator's events (through ``on_news``), not as its own."""
    from rollout_cli.engine.events import GateApproved, Note
    from rollout_cli.store import DirectoryStore, RolloutMeta

    store = DirectoryStore(tmp_path)
    rollout = store.start(RolloutMeta.for_plan("plan", _plan_file(tmp_path), _now()), time=1.0)
    shown: list[Any] = []
    follower = Reconciler(store, rollout, None, clock=ProcessClock(lambda: 1000.0),  # type: ignore[arg-type]
                          on_event=lambda event, state: shown.append(("own", event.TYPE)),
                          on_news=lambda event, state: shown.append(("news", event.TYPE)))
    follower.load()
    operator = Reconciler(store, store.open(rollout.id), None,  # type: ignore[arg-type]
                          clock=ProcessClock(lambda: 1001.0))
    operator.load()
    operator.record(Note(text="looked at it"))
    operator.record(GateApproved(who="ana@host"))

    follower.load()

    assert shown == [("news", "note"), ("news", "gate-approved")]


def _plan_file(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text("name: plan\n")
    return path


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)

"""The transition table, as a table: every legal move and a sample of illegal ones."""

from __future__ import annotations

import itertools

import pytest

from rollout_cli.engine.phases import PHASES, STAYING, TRANSITIONS, next_phase
from rollout_cli.errors import IllegalTransition

EVENTS = sorted({event for _, event in TRANSITIONS} | set(STAYING))

LEGAL = [
    ("pending", "created", "running"),
    ("running", "gate-waiting", "waiting-gate"),
    ("waiting-gate", "gate-approved", "running"),
    ("running", "gate-approved", "running"),
    ("running", "paused", "paused"),
    ("waiting-gate", "paused", "paused"),
    ("paused", "resumed", "running"),
    ("paused", "gate-approved", "running"),
    ("running", "succeeded", "succeeded"),
    ("running", "failed", "failed"),
    ("running", "rollback-started", "rolling-back"),
    ("paused", "rollback-started", "rolling-back"),
    ("succeeded", "rollback-started", "rolling-back"),
    ("rolled-back", "rollback-started", "rolling-back"),
    ("rollback-failed", "rollback-started", "rolling-back"),
    ("rolling-back", "rolled-back", "rolled-back"),
    ("rolling-back", "rollback-failed", "rollback-failed"),
    ("rolling-back", "intent", "rolling-back"),
    ("running", "stage-completed", "running"),
]

ILLEGAL = [
    ("pending", "paused"), ("pending", "rollback-started"), ("succeeded", "gate-approved"),
    ("rolled-back", "resumed"), ("waiting-gate", "succeeded"), ("rolling-back", "paused"),
    ("rolling-back", "succeeded"), ("paused", "stage-completed"), ("failed", "created"),
    ("running", "created"), ("succeeded", "intent"), ("rollback-failed", "rolled-back"),
]


@pytest.mark.parametrize(("phase", "event", "after"), LEGAL)
def test_legal_transition(phase, event, after):
    assert next_phase(phase, event) == after


@pytest.mark.parametrize(("phase", "event"), ILLEGAL)
def test_illegal_transition_names_phase_and_event(phase, event):
    with pytest.raises(IllegalTransition) as caught:
        next_phase(phase, event)

    assert caught.value.phase == phase and caught.value.event == event
    assert f"event {event!r} in phase {phase!r}" in str(caught.value)


def test_table_is_closed_over_phases():
    for (phase, event), after in TRANSITIONS.items():
        assert phase in PHASES and after in PHASES, (phase, event, after)
    for event, phases in STAYING.items():
        assert phases <= set(PHASES), event


def test_every_pair_is_either_legal_or_raises():
    for phase, event in itertools.product(PHASES, EVENTS):
        legal = (phase, event) in TRANSITIONS or phase in STAYING.get(event, ())
        if legal:
            assert next_phase(phase, event) in PHASES
        else:
            with pytest.raises(IllegalTransition):
                next_phase(phase, event)


def test_terminal_phases_only_leave_through_rollback():
    for phase in ("succeeded", "rolled-back", "failed", "rollback-failed"):
        exits = {event for (p, event) in TRANSITIONS if p == phase}
        assert exits == {"rollback-started"}, phase

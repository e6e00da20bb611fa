"""The pure decision core: state + plan + now -> what is due next. No I/O in here."""

from rollout_cli.engine import events
from rollout_cli.engine.decide import (
    Call,
    Decision,
    Finished,
    Measure,
    Policy,
    Record,
    Wait,
    decide,
)
from rollout_cli.engine.events import Event, from_json
from rollout_cli.engine.phases import TERMINAL, TRANSITIONS, next_phase
from rollout_cli.engine.state import RolloutState, apply, fold

__all__ = [
    "TERMINAL",
    "TRANSITIONS",
    "Call",
    "Decision",
    "Event",
    "Finished",
    "Measure",
    "Policy",
    "Record",
    "RolloutState",
    "Wait",
    "apply",
    "decide",
    "events",
    "fold",
    "from_json",
    "next_phase",
]

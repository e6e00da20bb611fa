"""The pure decision core: state + plan + now -> what is due next. No I/O in here."""

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
from rollout_cli.engine.phases import TERMINAL, TRANSITIONS, next_phase
from rollout_cli.engine.state import PendingCall, RolloutState, apply, fold

__all__ = [
    "TERMINAL", "TRANSITIONS", "Call", "Decision", "Finished", "Measure", "PendingCall",
    "Policy", "Record", "RolloutState", "Wait", "apply", "decide", "fold", "next_phase",
]

"""The rollout's phases and the one table of transitions between them.

    pending ──start──> running ──gate-waiting──> waiting-gate ──gate-approved──> running
    running | waiting-gate ──paused──> paused ──resumed──> running
    any live phase ──rollback-started──> rolling-back ──rolled-back──> rolled-back
                                                     └──rollback-failed──> rollback-failed
    running ──succeeded──> succeeded        running ──failed──> failed

A rollback may start again from any phase but pending: running it twice is safe.
"""

from __future__ import annotations

from rollout_cli.errors import IllegalTransition

PENDING = "pending"
RUNNING = "running"
WAITING_GATE = "waiting-gate"
PAUSED = "paused"
ROLLING_BACK = "rolling-back"
ROLLED_BACK = "rolled-back"
SUCCEEDED = "succeeded"
FAILED = "failed"
ROLLBACK_FAILED = "rollback-failed"

PHASES = (PENDING, RUNNING, WAITING_GATE, PAUSED, ROLLING_BACK, ROLLED_BACK, SUCCEEDED, FAILED,
          ROLLBACK_FAILED)
TERMINAL = frozenset({ROLLED_BACK, SUCCEEDED, FAILED, ROLLBACK_FAILED})

TRANSITIONS: dict[tuple[str, str], str] = {
    (PENDING, "created"): RUNNING,
    (RUNNING, "gate-waiting"): WAITING_GATE,
    (WAITING_GATE, "gate-approved"): RUNNING,
    (RUNNING, "paused"): PAUSED,
    (WAITING_GATE, "paused"): PAUSED,
    (PAUSED, "resumed"): RUNNING,
    (PAUSED, "gate-approved"): RUNNING,
    (RUNNING, "succeeded"): SUCCEEDED,
    (RUNNING, "failed"): FAILED,
    (PAUSED, "failed"): FAILED,
    (ROLLING_BACK, "rolled-back"): ROLLED_BACK,
    (ROLLING_BACK, "rollback-failed"): ROLLBACK_FAILED,
    **{(phase, "rollback-started"): ROLLING_BACK
       for phase in (RUNNING, WAITING_GATE, PAUSED, ROLLING_BACK, ROLLED_BACK, SUCCEEDED,
                     FAILED, ROLLBACK_FAILED)},
}

# Events that record something without changing the phase, and where they may happen.
STAYING: dict[str, frozenset[str]] = {
    "stage-started": frozenset({RUNNING}),
    "stage-baking": frozenset({RUNNING}),
    "stage-completed": frozenset({RUNNING}),
    "intent": frozenset({RUNNING, ROLLING_BACK, PAUSED}),
    "outcome": frozenset({RUNNING, ROLLING_BACK, PAUSED}),
    # RUNNING too: a process killed between an uncertain outcome and its pause;
    # ROLLING_BACK: a rollback's call in flight when its process died.
    "call-resolved": frozenset({PAUSED, RUNNING, ROLLING_BACK}),
    "gate-approved": frozenset({RUNNING}),   # auto-approval, or forced during a bake
    "promoted-full": frozenset({RUNNING, WAITING_GATE, PAUSED}),
    "analysis-started": frozenset({RUNNING, WAITING_GATE}),
    "measured": frozenset({RUNNING, WAITING_GATE}),
    "analysis": frozenset({RUNNING, WAITING_GATE}),
    "rollback-requested": frozenset({ROLLING_BACK}),   # a person, while one runs
    "plan-changed": frozenset(PHASES),
    "note": frozenset(PHASES),
}


def next_phase(phase: str, event: str) -> str:
    """The phase after ``event``; raises IllegalTransition when the table forbids it."""
    if (phase, event) in TRANSITIONS:
        return TRANSITIONS[(phase, event)]
    if phase in STAYING.get(event, ()):
        return phase
    raise IllegalTransition(phase, event)

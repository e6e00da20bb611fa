"""What is due next: a pure function of plan, state and time.

``decide`` never sleeps, sends or reads a clock. It answers with one of:
``Record`` (an event to journal, no I/O), ``Call`` (a request or command to perform,
journaled before and after), ``Wait`` (nothing to do before ``until``, or until a
person acts) and ``Finished``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rollout_cli.engine.phases import (
    FAILED,
    PAUSED,
    RUNNING,
    TERMINAL,
    WAITING_GATE,
)
from rollout_cli.engine.state import RolloutState
from rollout_cli.plan.models import Plan, Stage


@dataclass(frozen=True)
class Record:
    event: dict[str, Any]


@dataclass(frozen=True)
class Call:
    call_id: str
    kind: str                # step | traffic | rollback
    stage: int | None
    step: int


@dataclass(frozen=True)
class Wait:
    until: float | None      # None: until a person acts
    reason: str

    @property
    def on_person(self) -> bool:
        return self.until is None


@dataclass(frozen=True)
class Finished:
    phase: str
    reason: str | None


Decision = Record | Call | Wait | Finished


@dataclass(frozen=True)
class Policy:
    """How the caller wants gates handled: `rollout run --auto-approve` for CI."""

    auto_approve: bool = False


def decide(plan: Plan, state: RolloutState, now: float, policy: Policy = Policy()) -> Decision:
    if state.phase in TERMINAL:
        return Finished(state.phase, state.reason)
    if state.phase == "rolling-back":
        return _rollback(plan, state)
    if state.pending is not None:
        return _unfinished(state)
    if state.step_failure is not None and state.phase != PAUSED:
        return _failure(plan, state.step_failure)
    if state.phase == PAUSED:
        return Wait(None, state.pause_reason or "paused")
    if state.phase == WAITING_GATE:
        return _gate(plan.stages[state.stage], policy)
    return _running(plan, state, now, policy)


def _unfinished(state: RolloutState) -> Decision:
    call = state.pending
    assert call is not None
    if call.idempotent:
        return Call(call.call_id, call.kind, call.stage, call.step)
    reason = (f"uncertain call: {call.line} was sent or about to be sent when the rollout "
              "stopped, and it is not idempotent; check the target, then run "
              "`rollout resume --assume-applied` or `rollout resume --resend`")
    return Record({"type": "paused", "reason": reason, "uncertain": call.call_id})


def _failure(plan: Plan, failure: str) -> Decision:
    reason = f"step failed: {failure}"
    if plan.rollback:
        return Record({"type": "rollback-started", "reason": reason, "who": "rollout"})
    return Record({"type": "failed", "reason": reason + " (the plan has no rollback steps)"})


def _rollback(plan: Plan, state: RolloutState) -> Decision:
    if state.pending is not None:
        call = state.pending
        if call.idempotent:
            return Call(call.call_id, call.kind, call.stage, call.step)
        return Record({"type": "outcome", "call_id": call.call_id, "ok": False,
                       "uncertain": True, "error": "not re-sent: it may have been applied"})
    if state.rollback_step < len(plan.rollback):
        index = state.rollback_step
        return Call(f"rollback#{state.rollback_round}:{index}", "rollback", None, index)
    if state.rollback_failures:
        return Record({"type": "rollback-failed",
                       "reason": f"{state.reason}; rollback incomplete: "
                                 + "; ".join(state.rollback_failures)})
    return Record({"type": "rolled-back", "reason": state.reason})


def _gate(stage: Stage, policy: Policy) -> Decision:
    if policy.auto_approve:
        return Record({"type": "gate-approved", "stage": stage.name, "who": "auto-approve",
                       "auto": True})
    return Wait(None, f"stage {stage.name!r} waits at its manual gate: "
                      f"run `rollout advance` to continue")


def _running(plan: Plan, state: RolloutState, now: float, policy: Policy) -> Decision:
    if state.stage >= len(plan.stages):
        return Record({"type": "succeeded", "reason": "every stage completed"})
    stage = plan.stages[state.stage]
    if not state.stage_started:
        return Record({"type": "stage-started", "stage": state.stage, "name": stage.name,
                       "percentage": stage.percentage})
    if state.step < len(stage.steps):
        return Call(f"step:{state.stage}:{state.step}", "step", state.stage, state.step)
    if stage.percentage is not None and not state.traffic_applied:
        return Call(f"traffic:{state.stage}", "traffic", state.stage, 0)
    if stage.bake is not None and not state.bake_skipped:
        if state.baking_since is None:
            return Record({"type": "stage-baking", "stage": state.stage, "since": now})
        done_at = state.baking_since + stage.bake.min
        if now < done_at:
            return Wait(done_at, f"stage {stage.name!r} bakes until {done_at:.3f}")
    if stage.gate == "manual" and not state.gate_approved:
        if policy.auto_approve:
            return Record({"type": "gate-approved", "stage": stage.name, "who": "auto-approve",
                           "auto": True})
        return Record({"type": "gate-waiting", "stage": state.stage, "name": stage.name})
    return Record({"type": "stage-completed", "stage": state.stage, "name": stage.name})


def exit_code(phase: str) -> int:
    """DESIGN.md's exit codes for where a rollout stands."""
    from rollout_cli.errors import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_WAITING

    if phase in ("rolled-back", FAILED):
        return EXIT_FAILED
    if phase == "rollback-failed":
        return EXIT_UNREACHABLE
    if phase in (WAITING_GATE, PAUSED):
        return EXIT_WAITING
    if phase == RUNNING or phase == "succeeded":
        return EXIT_OK
    return EXIT_OK

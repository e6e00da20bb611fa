"""What is due next: a pure function of plan, state and time.

``decide`` never sleeps, sends or reads a clock. It answers with one of:
``Record`` (an event to journal, no I/O), ``Call`` (a request or command to perform,
journaled before and after), ``Wait`` (nothing to do before ``until``, or until a
person acts) and ``Finished``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rollout_cli.engine import analysis as runs
from rollout_cli.engine import events as ev
from rollout_cli.engine.phases import (
    FAILED,
    PAUSED,
    ROLLBACK_FAILED,
    ROLLED_BACK,
    TERMINAL,
    WAITING_GATE,
)
from rollout_cli.engine.state import RolloutState
from rollout_cli.errors import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_WAITING
from rollout_cli.plan.models import Analysis, Plan, Stage


@dataclass(frozen=True)
class Record:
    event: ev.Event


@dataclass(frozen=True)
class Call:
    call_id: str
    kind: str                # step | traffic | rollback
    stage: int | None
    step: int


@dataclass(frozen=True)
class Measure:
    """Fetch these metrics now; the outcome is journaled as one `measured` event."""

    metrics: tuple[str, ...]
    keep: dict[str, float]
    stage: int


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


Decision = Record | Call | Measure | Wait | Finished


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
    if state.uncertain is not None and state.phase != PAUSED:
        return _uncertain(state)
    if state.step_failure is not None and state.phase != PAUSED:
        return _failure(plan, state)
    if state.phase == PAUSED:
        return Wait(None, state.pause_reason or "paused")
    if state.phase == WAITING_GATE:
        gate = _gate(plan.stages[state.stage], state.stage, policy)
        return _analysis_due(plan, state, now) or gate
    return _running(plan, state, now, policy)


def _unfinished(state: RolloutState) -> Decision:
    call = state.pending
    assert call is not None
    if call.idempotent:
        return Call(call.call_id, call.kind, call.stage, call.step)
    if state.phase == PAUSED:
        # Paused by a person after the process that sent it was killed: it is judged
        # (and named) when the rollout resumes; a paused rollout cannot pause again.
        return Wait(None, state.pause_reason or "paused")
    reason = (f"uncertain call: {call.line} was sent or about to be sent when the rollout "
              "stopped, and it is not idempotent; check the target, then run "
              "`rollout resume --assume-applied` or `rollout resume --resend`")
    return Record(ev.Paused(reason=reason, uncertain=call.call_id))


def _uncertain(state: RolloutState) -> Decision:
    """A non-idempotent call got no answer (a timeout): it may have been applied."""
    call = state.uncertain
    assert call is not None
    reason = (f"uncertain call: {call.line} got no answer and is not idempotent, so it is "
              "not sent again; check the target, then run `rollout resume --assume-applied` "
              "or `rollout resume --resend`")
    return Record(ev.Paused(reason=reason, uncertain=call.call_id))


def _failure(plan: Plan, state: RolloutState) -> Decision:
    reason = f"step failed: {state.step_failure}"
    stage = plan.stages[state.stage] if state.stage < len(plan.stages) else None
    step = stage.steps[state.step] if stage and state.step < len(stage.steps) else None
    if step is not None and step.on_failure == "abort":
        return Record(ev.Failed(reason=reason + " (on_failure: abort, so the rollback was "
                                "not run)"))
    if plan.rollback:
        return Record(ev.RollbackStarted(reason=reason, who="rollout"))
    return Record(ev.Failed(reason=reason + " (the plan has no rollback steps)"))


def _rollback(plan: Plan, state: RolloutState) -> Decision:
    if state.pending is not None:
        call = state.pending
        if call.idempotent:
            return Call(call.call_id, call.kind, call.stage, call.step)
        return Record(ev.Outcome(call_id=call.call_id, ok=False, uncertain=True,
                                 error="not re-sent: it may have been applied"))
    if state.rollback_step < len(plan.rollback):
        index = state.rollback_step
        return Call(f"rollback#{state.rollback_round}:{index}", "rollback", None, index)
    if state.rollback_failures:
        return Record(ev.RollbackFailed(reason=f"{state.reason}; rollback incomplete: "
                                        + "; ".join(state.rollback_failures)))
    reason = state.reason
    if state.rollback_uncertain:  # rolled back, but say what nobody can vouch for
        reason = (f"{reason}; not re-sent, may not have been applied (not idempotent, no "
                  f"answer): " + "; ".join(state.rollback_uncertain)
                  + ". Check the target; if it never arrived, send it by hand or run the "
                  "rollback again (`rollout rollback ROLLOUT`, every step is sent again)")
    return Record(ev.RolledBack(reason=reason))


def _gate(stage: Stage, stage_index: int, policy: Policy) -> Decision:
    if policy.auto_approve:
        return Record(ev.GateApproved(stage=stage_index, name=stage.name, who="auto-approve",
                                      auto=True))
    return Wait(None, f"stage {stage.name!r} waits at its manual gate: "
                      f"run `rollout advance` to continue")


def _running(plan: Plan, state: RolloutState, now: float, policy: Policy) -> Decision:
    if state.stage >= len(plan.stages):
        short = _traffic_short(plan, state)
        if short is not None:
            return Record(ev.Paused(reason=short))
        return Record(ev.Succeeded(reason="every stage completed"))
    stage = plan.stages[state.stage]
    if not state.stage_started:
        return Record(ev.StageStarted(stage=state.stage, name=stage.name,
                                      percentage=stage.percentage))
    if state.step < len(stage.steps):
        return Call(f"step:{state.stage}:{state.step}", "step", state.stage, state.step)
    if stage.percentage is not None and not state.traffic_applied:
        return Call(f"traffic:{state.stage}", "traffic", state.stage, 0)
    stage_analysis = plan.analysis_for(stage)
    if state.baking_since is None and (stage.bake or stage_analysis) and not state.bake_skipped:
        return Record(ev.StageBaking(stage=state.stage, since=now))
    due = _analysis_due(plan, state, now)
    if due is not None:
        return due
    if not state.bake_skipped:
        waiting = _baking(plan, stage, stage_analysis, state, now)
        if waiting is not None:
            return waiting
    if stage.gate == "manual" and not state.gate_approved:
        if policy.auto_approve:
            return Record(ev.GateApproved(stage=state.stage, name=stage.name,
                                          who="auto-approve", auto=True))
        return Record(ev.GateWaiting(stage=state.stage, name=stage.name))
    return Record(ev.StageCompleted(stage=state.stage, name=stage.name))


def _traffic_short(plan: Plan, state: RolloutState) -> str | None:
    """Why the rollout cannot succeed yet: its traffic is not what the last stage set."""
    traffic = plan.traffic_stages
    if not traffic:
        return None
    wanted = plan.stages[traffic[-1]].percentage
    if state.percentage == wanted:
        return None
    now = "unknown" if state.percentage is None else f"{state.percentage:g}%"
    return (f"every stage is done, but traffic is at {now}, not the {wanted:g}% of the last "
            f"stage ({plan.stages[traffic[-1]].name}); check the target, then roll back or "
            "fix the plan")


def _baking(plan: Plan, stage: Stage, stage_analysis: Analysis | None, state: RolloutState,
            now: float) -> Decision | None:
    """A Wait while the stage must keep baking, a pause when its bake ran out; else None.

    A bake counts watched time (``RolloutState.baked_at``), not time on the wall."""
    watched = state.baked_at(now)
    low = stage.bake.min if stage.bake else 0.0
    high = stage.bake.max if stage.bake else None
    run = state.analyses.get(runs.STAGE)
    passed = stage_analysis is None or state.gate_approved or (run is not None and run.passed)
    # Within a microsecond: watched time is a sum of float differences, and a bake that is
    # over by the clock must not wait a whole interval more for a rounding error.
    if watched + 1e-6 >= low and passed:
        return None
    if high is not None and watched >= high and not passed and high > low:
        detail = run.message or "; ".join(v["reason"] for v in run.verdicts) if run else ""
        return Record(ev.Paused(reason=f"stage {stage.name!r}: bake {stage.bake} is over and "
                                f"its analysis has not passed: {detail}"))
    # The bake's clock stands still while its metric source is down: then only the next
    # round can move it.
    ticking = state.bake_clock is not None
    wakes = [t for t in (now + low - watched if ticking and watched + 1e-6 < low else None,
                         now + high - watched if ticking and high is not None else None,
                         *_next_due(plan, state))
             if t is not None and t > now]
    until = min(wakes) if wakes else now + (stage_analysis.interval if stage_analysis else 1.0)
    what = "bakes" if watched + 1e-6 < low else "waits for a passing analysis"
    return Wait(until, f"stage {stage.name!r} {what} until {until:.3f}")


def _active_analyses(plan: Plan, state: RolloutState) -> list[tuple[str, Analysis]]:
    found = []
    stage = plan.stages[state.stage] if state.stage < len(plan.stages) else None
    stage_analysis = plan.analysis_for(stage) if stage else None
    if stage_analysis is not None and state.baking_since is not None:
        found.append((runs.STAGE, stage_analysis))
    background = plan.background_analysis
    traffic = plan.traffic_stages
    if background is not None and traffic and traffic[0] <= state.stage <= traffic[-1] and (
            state.stage > traffic[0] or state.traffic_applied):
        found.append((runs.BACKGROUND, background))
    return found


def _next_due(plan: Plan, state: RolloutState) -> list[float]:
    return [state.analyses[scope].next_due for scope, _ in _active_analyses(plan, state)
            if scope in state.analyses]


def _analysis_due(plan: Plan, state: RolloutState, now: float) -> Decision | None:
    """Start, act on, measure for, or judge an analysis run, when one is due."""
    active = _active_analyses(plan, state)
    for scope, analysis in active:
        if scope not in state.analyses:
            return Record(ev.AnalysisStarted(scope=scope, started=now,
                                             next_due=now + analysis.initial_delay))
    for scope, _ in active:
        run = state.analyses[scope]
        if run.action == "rollback":
            return Record(ev.RollbackStarted(reason=run.message, who="analysis"))
        if run.action == "pause":
            return Record(ev.Paused(reason=run.message, who="analysis"))
    for scope, analysis in active:
        run = state.analyses[scope]
        # Judged on a measurement taken for it: due by then, with all of its metrics, not
        # judged before, and fresh (a process that resumes measures before it judges).
        if runs.judgeable(run, analysis, state.measured_at, state.measured_seq, now) and \
                runs.measures_all(plan, analysis, state.measured_metrics):
            assert state.measured_at is not None
            judged = runs.assess(plan, analysis, scope, run, state.measurements,
                                 state.measured_at, state.measured_seq)
            return Record(ev.AnalysisRound(scope=scope, stage=state.stage, run=judged))
    due = [(scope, analysis) for scope, analysis in active
           if now >= runs.earliest(state.analyses[scope], analysis)]
    if not due:
        return None
    # An analysis that may measure a little later (a first round waiting out its initial
    # delay) is waited for, within the slack of those due: rounds move later to share a
    # measurement, never earlier than a run allows.
    within = now + min(runs.slack(analysis) for _, analysis in due)
    soon = [runs.earliest(state.analyses[scope], analysis) for scope, analysis in active
            if (scope, analysis) not in due
            and runs.earliest(state.analyses[scope], analysis) <= within]
    if soon:
        return Wait(max(soon), f"measures at {max(soon):.3f}, for every analysis due by then")
    metrics: list[str] = []
    keep: dict[str, float] = {}
    for _, analysis in due:
        for metric in plan.metrics_of(analysis):
            if metric not in metrics:
                metrics.append(metric)
            keep[metric] = max(keep.get(metric, 0.0),
                               runs.keep_for(plan, metric, analysis.interval))
    return Measure(tuple(metrics), keep, state.stage)


_EXIT_CODES = {ROLLED_BACK: EXIT_FAILED, FAILED: EXIT_FAILED, ROLLBACK_FAILED: EXIT_UNREACHABLE,
               WAITING_GATE: EXIT_WAITING, PAUSED: EXIT_WAITING}


def exit_code(phase: str) -> int:
    """DESIGN.md's exit codes for where a rollout stands: 0 for running or succeeded."""
    return _EXIT_CODES.get(phase, EXIT_OK)

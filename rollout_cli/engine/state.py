"""A rollout's state, and how each journaled event changes it (pure): the one fold.

``apply(state, event)`` returns the new state and never changes ``state``; everything that
needs a rollout's state (the reconciler, status, the report, the live view) folds the
journal's events with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from rollout_cli.engine import events as ev
from rollout_cli.engine.analysis import STAGE, Run
from rollout_cli.engine.checks import Sample
from rollout_cli.engine.measurements import Measurements
from rollout_cli.engine.phases import (
    PAUSED,
    PENDING,
    ROLLING_BACK,
    RUNNING,
    next_phase,
)


@dataclass(frozen=True)
class RolloutState:
    id: str
    plan: str
    plan_digest: str = ""
    phase: str = PENDING
    seq: int = 0
    created: float = 0.0
    updated: float = 0.0
    stage: int = 0
    step: int = 0
    stage_started: bool = False
    stage_started_at: float | None = None
    stage_names: tuple[str, ...] = ()        # of the stages started so far, by index
    traffic_applied: bool = False
    baking_since: float | None = None
    baked: float = 0.0                       # watched bake time before ``bake_clock``
    bake_clock: float | None = None          # watching since; None: paused or blind
    bake_skipped: bool = False
    gate_approved: bool = False
    full_promotion: bool = False
    percentage: float | None = None
    captures: dict[str, Any] = field(default_factory=dict)
    pending: ev.Intent | None = None       # a call journaled as intended, without outcome
    uncertain: ev.Intent | None = None     # a call that may or may not have been applied
    step_failure: str | None = None
    pause_reason: str | None = None
    reason: str | None = None
    rollback_round: int = 0
    rollback_step: int = 0
    rollback_failures: tuple[str, ...] = ()
    rollback_uncertain: tuple[str, ...] = ()
    last_event: str = ""
    measured_at: float | None = None
    measured_seq: int = 0                    # the seq of the `measured` event at measured_at
    measured_metrics: tuple[str, ...] = ()   # what the measurement at measured_at fetched
    analyses: dict[str, Run] = field(default_factory=dict)
    history: dict[str, tuple[tuple[float, float | None, str], ...]] = field(default_factory=dict)
    measurements: Measurements = field(default_factory=Measurements)

    def baked_at(self, now: float) -> float:
        """How long the current stage's bake has watched by ``now``: paused time and time
        in an error streak (its metric source down) do not count."""
        running = 0.0 if self.bake_clock is None else max(0.0, now - self.bake_clock)
        return self.baked + running

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items()
                if k not in ("measurements", "analyses", "pending", "uncertain")}
        return {**data, "pending": _call_json(self.pending),
                "uncertain": _call_json(self.uncertain),
                "analyses": {k: run.to_json() for k, run in self.analyses.items()},
                "measurements": self.measurements.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RolloutState:
        values = dict(data)
        for key in ("pending", "uncertain"):
            if values.get(key):
                values[key] = ev.from_json({**values[key], "type": ev.Intent.TYPE})
        for key in ("rollback_failures", "rollback_uncertain", "measured_metrics",
                    "stage_names"):
            values[key] = tuple(values.get(key, ()))
        values["analyses"] = {k: Run.from_json(v) for k, v in values.get("analyses", {}).items()}
        values["history"] = {k: tuple(tuple(p) for p in v)
                             for k, v in values.get("history", {}).items()}
        values["measurements"] = Measurements.from_json(values.get("measurements", {}))
        return cls(**values)


_FIELDS = frozenset(f.name for f in fields(RolloutState))


def _call_json(call: ev.Intent | None) -> dict[str, Any] | None:
    if call is None:
        return None
    found = call.to_record()
    del found["type"]
    return found


def replace(state: Any, **changes: Any) -> Any:
    """``dataclasses.replace``, without re-running ``__init__`` for a RolloutState: the fold
    replaces the state once per event, and a week-long simulation folds millions."""
    if type(state) is not RolloutState:
        return dataclasses.replace(state, **changes)
    if not changes.keys() <= _FIELDS:
        raise TypeError(f"RolloutState has no field(s) {sorted(changes.keys() - _FIELDS)}")
    new = object.__new__(RolloutState)
    new.__dict__.update(state.__dict__)
    new.__dict__.update(changes)
    return new


def fold(state: RolloutState, events: Iterable[ev.Event]) -> RolloutState:
    for event in events:
        state = apply(state, event)
    return state


def apply(state: RolloutState, event: ev.Event) -> RolloutState:
    """The state after one journaled event. Illegal events raise IllegalTransition."""
    phase = next_phase(state.phase, event.TYPE)
    if state.phase == PAUSED and phase == RUNNING:
        state = _watching_again(state, event.time)
    state = replace(state, phase=phase, seq=event.seq, updated=event.time,
                    last_event=event.TYPE)
    handler = _HANDLERS.get(type(event))
    return handler(state, event) if handler else state


def _created(state: RolloutState, event: ev.Created) -> RolloutState:
    return replace(state, created=event.time, plan_digest=event.plan_digest)


def _stage_started(state: RolloutState, event: ev.StageStarted) -> RolloutState:
    analyses = {k: v for k, v in state.analyses.items() if k != STAGE}
    names = (*state.stage_names[:event.stage], event.name)
    return replace(state, stage=event.stage, step=0, stage_started=True, analyses=analyses,
                   stage_started_at=event.time, stage_names=names, traffic_applied=False,
                   baking_since=None, baked=0.0, bake_clock=None,
                   bake_skipped=state.full_promotion, gate_approved=state.full_promotion,
                   step_failure=None)


def _intent(state: RolloutState, event: ev.Intent) -> RolloutState:
    return replace(state, pending=event)


def _outcome(state: RolloutState, event: ev.Outcome) -> RolloutState:
    call = state.pending
    state = replace(state, pending=None)
    if call is None or call.call_id != event.call_id:
        return state
    if event.uncertain:
        if call.kind == "rollback":
            return replace(state, rollback_step=state.rollback_step + 1,
                           rollback_uncertain=(*state.rollback_uncertain, call.line))
        return replace(state, uncertain=call)
    return _settle(state, call, event.ok, event.captures, event.percentage, event.error)


def _settle(state: RolloutState, call: ev.Intent, ok: bool, captured: Any,
            percentage: float | None, error: str | None = None) -> RolloutState:
    captures = {**state.captures, **captured} if ok else state.captures
    if call.kind == "rollback":
        # What a rollback step captures feeds the later ones, with no stage state at all.
        failures = state.rollback_failures if ok else (
            *state.rollback_failures, f"{call.line}: {error}")
        return replace(state, rollback_step=state.rollback_step + 1, rollback_failures=failures,
                       captures=captures)
    if not ok:
        return replace(state, step_failure=f"{call.line}: {error}")
    if call.kind == "traffic":
        return replace(state, traffic_applied=True, captures=captures,
                       percentage=state.percentage if percentage is None else percentage)
    return replace(state, step=state.step + 1, captures=captures)


def _call_resolved(state: RolloutState, event: ev.CallResolved) -> RolloutState:
    """A person's word on a call that may or may not have been applied: the uncertain one,
    or a rollback's call that was in flight when its process died."""
    call = state.uncertain
    if call is None and state.phase == ROLLING_BACK and state.pending is not None and (
            state.pending.call_id == event.call_id):
        call, state = state.pending, replace(state, pending=None)
    state = replace(state, uncertain=None)
    if call is None or event.how == "resend":
        return state
    return _settle(state, call, True, event.captures, event.percentage)


def _acted(state: RolloutState, reset: bool = False) -> RolloutState:
    """An analysis action was taken (or a person stepped in): clear it, maybe the counts."""
    runs = {scope: replace(run, action="", **({"inconclusives": 0, "consecutive_errors": 0}
                                              if reset else {}))
            for scope, run in state.analyses.items()}
    return replace(state, analyses=runs)


def _paused(state: RolloutState, event: ev.Paused) -> RolloutState:
    if event.uncertain and state.pending is not None:
        state = replace(state, uncertain=state.pending, pending=None)
    return replace(_acted(state), pause_reason=event.reason,
                   baked=state.baked_at(event.time), bake_clock=None)


def _watching_again(state: RolloutState, now: float) -> RolloutState:
    """Leaving a pause: the bake's clock runs again, and the stage is judged afresh, on
    what is measured from now on."""
    if state.baking_since is None:
        return state
    state = replace(state, bake_clock=now)
    return _fresh_stage_run(state, now)


def _fresh_stage_run(state: RolloutState, since: float) -> RolloutState:
    run = state.analyses.get(STAGE)
    if run is None:
        return state
    return replace(state, analyses={**state.analyses,
                                    STAGE: replace(run, since=since, passed=False)})


def _resumed(state: RolloutState, event: ev.Resumed) -> RolloutState:
    return replace(_acted(state, reset=True), pause_reason=None)


def _gate_approved(state: RolloutState, event: ev.GateApproved) -> RolloutState:
    return replace(_acted(state, reset=True), gate_approved=True, pause_reason=None,
                   bake_skipped=state.bake_skipped or event.forced)


def _analysis_started(state: RolloutState, event: ev.AnalysisStarted) -> RolloutState:
    # Samples before the first round is due (traffic answered + initial_delay) never count.
    run = Run(started=event.started, next_due=event.next_due,
              since=event.next_due if event.since is None else event.since)
    return replace(state, analyses={**state.analyses, event.scope: run})


def _measured(state: RolloutState, event: ev.Measured) -> RolloutState:
    measurements = state.measurements
    for metric, value in event.values.items():
        for one in value if isinstance(value, list | tuple) else [value]:
            measurements = measurements.add(
                metric, Sample(event.time, one, event.errors.get(metric)),
                event.keep.get(metric, 3600.0))
    return replace(state, measurements=measurements, measured_at=event.time,
                   measured_seq=event.seq, measured_metrics=tuple(event.values))


HISTORY = 30


def _analysis(state: RolloutState, event: ev.AnalysisRound) -> RolloutState:
    run = event.run
    history = dict(state.history)
    for verdict in run.verdicts:
        points = (*history.get(verdict["check"], ()), (event.time, verdict["value"],
                                                       verdict["phase"]))
        history[verdict["check"]] = points[-HISTORY:]
    state = replace(state, analyses={**state.analyses, event.scope: run}, history=history)
    if event.scope == STAGE and state.baking_since is not None:
        state = _bake_watch(state, run, event.time)
    return state


def _bake_watch(state: RolloutState, run: Run, now: float) -> RolloutState:
    """A stage round moves the bake's clock: a round that could not measure (its metric
    source failed) stops it as of the last round that could, and the first round that
    measures again restarts it there, with the stage judged afresh from that measurement."""
    blind = run.consecutive_errors > 0
    if state.bake_clock is not None:
        if blind:
            return replace(state, bake_clock=None)
        return replace(state, baked=state.baked_at(now), bake_clock=now)
    if blind:
        return state
    since = state.measured_at if state.measured_at is not None else now
    return _fresh_stage_run(replace(state, bake_clock=since), since)


def _promoted_full(state: RolloutState, event: ev.PromotedFull) -> RolloutState:
    return replace(state, full_promotion=True, gate_approved=True, bake_skipped=True)


def _stage_baking(state: RolloutState, event: ev.StageBaking) -> RolloutState:
    return replace(state, baking_since=event.since, baked=0.0, bake_clock=event.since)


def _stage_completed(state: RolloutState, event: ev.StageCompleted) -> RolloutState:
    return replace(state, stage=state.stage + 1, stage_started=False, step=0,
                   traffic_applied=False, baking_since=None, baked=0.0, bake_clock=None)


def _rollback_started(state: RolloutState, event: ev.RollbackStarted) -> RolloutState:
    return replace(_acted(state), rollback_round=state.rollback_round + 1, rollback_step=0,
                   rollback_failures=(), rollback_uncertain=(), reason=event.reason,
                   pending=None, uncertain=None, pause_reason=None)


def _rollback_requested(state: RolloutState, event: ev.RollbackRequested) -> RolloutState:
    return replace(state, reason=f"{state.reason}; {event.reason}" if state.reason
                   else event.reason)


def _ended(state: RolloutState, event: ev.Ended) -> RolloutState:
    return replace(state, reason=state.reason if event.reason is None else event.reason)


def _plan_changed(state: RolloutState, event: ev.PlanChanged) -> RolloutState:
    return replace(state, plan_digest=event.plan_digest)


_HANDLERS: dict[type[ev.Event], Callable[[RolloutState, Any], RolloutState]] = {
    ev.Created: _created,
    ev.StageStarted: _stage_started,
    ev.Intent: _intent,
    ev.Outcome: _outcome,
    ev.CallResolved: _call_resolved,
    ev.Paused: _paused,
    ev.Resumed: _resumed,
    ev.GateApproved: _gate_approved,
    ev.PromotedFull: _promoted_full,
    ev.StageBaking: _stage_baking,
    ev.StageCompleted: _stage_completed,
    ev.RollbackStarted: _rollback_started,
    ev.RollbackRequested: _rollback_requested,
    ev.RolledBack: _ended,
    ev.RollbackFailed: _ended,
    ev.Failed: _ended,
    ev.Succeeded: _ended,
    ev.PlanChanged: _plan_changed,
    ev.AnalysisStarted: _analysis_started,
    ev.Measured: _measured,
    ev.AnalysisRound: _analysis,
}

__all__ = ["RUNNING", "RolloutState", "apply", "fold"]

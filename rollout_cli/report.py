"""A rollout's report: its journal folded into stages, decisions, rollbacks and per-check
series, ready for `rollout report` to render as Markdown, HTML or JSON.

Pure: it reads events one at a time and never holds the journal, so a long rollout's
report stays small (per-check points and analysis decisions are capped).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from rollout_cli.engine import events as ev
from rollout_cli.words import gist

if TYPE_CHECKING:
    from rollout_cli.engine.analysis import Run
    from rollout_cli.engine.events import Event
    from rollout_cli.engine.state import RolloutState

MAX_POINTS = 2000
"""Points kept per check; past this the series is thinned by striding (see Series.add)."""
MAX_ANALYSIS_DECISIONS = 500
"""Non-pass analysis rounds kept as decisions; later ones are only counted."""

TERMINAL = ("succeeded", "rolled-back", "rollback-failed", "failed")

# Without the plan, a verdict's reason still carries its bands ("...; pass needs >= 0.95,
# fail at < 0.90 -> inconclusive"): enough to draw the thresholds.
_BANDS = re.compile(r"; (?:pass needs (?P<pass>[^,]+?))?(?:, )?(?:fail at (?P<fail>.+?))?"
                    r" -> \w+$")


@dataclass
class Stage:
    index: int
    name: str
    percentage: float | None
    started: float
    completed: float | None = None
    ended: str | None = None
    """How it ended when not completed: 'rolled back', 'failed', ..."""


@dataclass
class Decision:
    time: float
    kind: str
    reason: str
    stage: str | None = None
    who: str | None = None
    forced: bool = False
    auto: bool = False
    repeats: int = 1
    """Rounds in a row that said the same (numbers aside); ``reason`` is the last one's."""
    last: float | None = None
    """The time of the last of those repeats."""


@dataclass
class RollbackCall:
    call_id: str
    line: str
    ok: bool | None = None
    """None while the call has no outcome in the journal (interrupted)."""
    status: int | None = None
    error: str | None = None
    attempts: int | None = None
    elapsed: float | None = None


@dataclass
class Rollback:
    started: float
    reason: str
    who: str | None
    calls: list[RollbackCall] = field(default_factory=list)
    ended: float | None = None
    outcome: str | None = None


@dataclass
class Series:
    """One check's values over time, thinned past ``cap`` points to stay bounded."""

    check: str
    scope: str
    thresholds: str = ""
    pass_text: str | None = None
    fail_text: str | None = None
    allowed_text: str | None = None
    """A compare check's allowed change, as a threshold on its estimate (``> +5%``)."""
    points: list[tuple[float, float | None, str]] = field(default_factory=list)
    seen: int = 0
    stride: int = 1
    cap: int = MAX_POINTS

    def add(self, time: float, value: float | None, verdict: str) -> None:
        # Striding keeps an evenly spread sample: every `stride`-th point is kept and the
        # stride doubles (halving the kept points) whenever the cap is reached.
        self.seen += 1
        if (self.seen - 1) % self.stride:
            return
        self.points.append((time, value, verdict))
        if len(self.points) > self.cap:
            self.points = self.points[::2]
            self.stride *= 2


@dataclass
class Report:
    rollout_id: str
    plan: str
    created: float | None
    outcome: str | None = None
    outcome_reason: str | None = None
    ended: float | None = None
    stages: list[Stage] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    omitted_decisions: int = 0
    rollbacks: list[Rollback] = field(default_factory=list)
    checks: dict[str, Series] = field(default_factory=dict)
    events: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for series in data["checks"].values():
            series.pop("cap")
            series["points"] = [{"time": t, "value": v, "verdict": p}
                                for t, v, p in series["points"]]
        return data


class _Builder:
    """Reads events with the state the engine folds from them (``state`` is the state
    after the event): the report's own records are what the state does not keep, such as
    when each stage began and ended, and every rollback call with its outcome."""

    def __init__(self, report: Report, plan: Any | None) -> None:
        self.report = report
        self.plan = plan
        self.analysis_decisions = 0

    def feed(self, event: Event, state: RolloutState) -> None:
        self.report.events += 1
        handler = getattr(self, "on_" + event.TYPE.replace("-", "_"), None)
        if handler is not None:
            handler(event, state)

    def decide(self, event: Event, state: RolloutState, kind: str, reason: str) -> None:
        stage = getattr(event, "stage", None)
        index = stage if isinstance(stage, int) else state.stage
        names = state.stage_names
        name = names[index] if index < len(names) else (names[-1] if names else None)
        self.report.decisions.append(Decision(event.time, kind, reason, name,
                                              getattr(event, "who", None),
                                              getattr(event, "forced", False),
                                              getattr(event, "auto", False)))

    def end_open_stage(self, how: str) -> None:
        if self.report.stages and self.report.stages[-1].completed is None:
            self.report.stages[-1].ended = self.report.stages[-1].ended or how

    # One handler per event type the report uses; the others are ignored.

    def on_created(self, event: ev.Created, state: RolloutState) -> None:
        self.report.created = self.report.created or event.time

    def on_stage_started(self, event: ev.StageStarted, state: RolloutState) -> None:
        self.report.stages.append(Stage(event.stage, event.name, event.percentage, event.time))

    def on_stage_completed(self, event: ev.StageCompleted, state: RolloutState) -> None:
        for stage in reversed(self.report.stages):
            if stage.index == event.stage:
                stage.completed = event.time
                return

    def on_analysis(self, event: ev.AnalysisRound, state: RolloutState) -> None:
        run = event.run
        for verdict in run.verdicts:
            self.series(str(verdict.get("check")), event.scope, verdict).add(
                event.time, _number(verdict.get("value")), str(verdict.get("phase")))
        phase = run.phase or ("pass" if run.passed else "inconclusive")
        if phase == "pass":
            return
        if self.analysis_decisions >= MAX_ANALYSIS_DECISIONS:
            self.report.omitted_decisions += 1
            return
        reason = _analysis_reason(event.scope, phase, run)
        previous = self.report.decisions[-1] if self.report.decisions else None
        if previous is not None and previous.kind == "analysis" and \
                gist(previous.reason) == gist(reason):
            previous.repeats += 1
            previous.reason, previous.last = reason, event.time
            return
        self.analysis_decisions += 1
        self.decide(event, state, "analysis", reason)

    def series(self, check: str, scope: str, verdict: Mapping[str, Any]) -> Series:
        found = self.report.checks.get(check)
        if found is None:
            found = self.report.checks[check] = Series(check, scope)
            self.describe(found, str(verdict.get("reason") or ""))
        return found

    def describe(self, series: Series, reason: str) -> None:
        check = (getattr(self.plan, "checks", None) or {}).get(series.check)
        if check is not None:
            from rollout_cli.plan.dryrun import describe_check

            series.thresholds = describe_check(check)
            series.pass_text = str(check.pass_) if check.pass_ is not None else None
            series.fail_text = str(check.fail) if check.fail is not None else None
            if check.compare is not None:
                series.allowed_text = allowed_threshold(check.compare)
            return
        bands = _BANDS.search(reason)
        if bands:
            series.pass_text, series.fail_text = bands["pass"], bands["fail"]
            series.thresholds = ", ".join(
                f"{label} {text}" for label, text in (("pass", bands["pass"]),
                                                      ("fail", bands["fail"])) if text)

    def on_gate_waiting(self, event: ev.GateWaiting, state: RolloutState) -> None:
        self.decide(event, state, "gate-waiting", "waiting for approval at the manual gate")

    def on_gate_approved(self, event: ev.GateApproved, state: RolloutState) -> None:
        how = ("forced" if event.forced else
               "automatically" if event.auto else f"by {event.who}")
        reason = f"gate approved {how}" + (f": {event.reason}" if event.reason else "")
        self.decide(event, state, "gate-approved", reason)

    def on_paused(self, event: ev.Paused, state: RolloutState) -> None:
        self.decide(event, state, "paused", event.reason or "paused")

    def on_resumed(self, event: ev.Resumed, state: RolloutState) -> None:
        self.decide(event, state, "resumed", f"resumed by {event.who}")

    def on_promoted_full(self, event: ev.PromotedFull, state: RolloutState) -> None:
        reason = "promoted through all remaining stages" + (
            f": {event.reason}" if event.reason else "")
        self.decide(event, state, "promoted-full", reason)

    def on_plan_changed(self, event: ev.PlanChanged, state: RolloutState) -> None:
        self.decide(event, state, "plan-changed", "continued with a changed plan")

    def on_note(self, event: ev.Note, state: RolloutState) -> None:
        self.decide(event, state, "note", event.text)

    def on_rollback_started(self, event: ev.RollbackStarted, state: RolloutState) -> None:
        reason = event.reason or "rollback"
        self.decide(event, state, "rollback-started", reason)
        self.report.rollbacks.append(Rollback(event.time, reason, event.who))
        self.end_open_stage("rolled back")

    def on_rollback_requested(self, event: ev.RollbackRequested, state: RolloutState) -> None:
        self.decide(event, state, "rollback-requested", f"rollback requested again by "
                    f"{event.who}: {event.reason}")

    def on_intent(self, event: ev.Intent, state: RolloutState) -> None:
        # Only rollback calls are itemised; the rest are the stages' own steps.
        if event.kind == "rollback" and self.report.rollbacks:
            self.report.rollbacks[-1].calls.append(RollbackCall(event.call_id, event.line))

    def on_outcome(self, event: ev.Outcome, state: RolloutState) -> None:
        rollbacks = self.report.rollbacks
        call = rollbacks[-1].calls[-1] if rollbacks and rollbacks[-1].calls else None
        if call is None or call.call_id != event.call_id or call.ok is not None:
            return
        call.ok = event.ok
        call.status = event.status if event.status is not None else event.exit_code
        call.error = event.error
        call.attempts = event.attempts
        call.elapsed = event.elapsed

    def finish(self, event: ev.Ended, state: RolloutState) -> None:
        reason = event.reason or ""
        self.report.outcome, self.report.outcome_reason = event.TYPE, reason
        self.report.ended = event.time
        self.decide(event, state, event.TYPE, reason or event.TYPE)
        if self.report.rollbacks and event.TYPE in ("rolled-back", "rollback-failed"):
            self.report.rollbacks[-1].ended = event.time
            self.report.rollbacks[-1].outcome = event.TYPE
        self.end_open_stage(event.TYPE)

    on_succeeded = on_rolled_back = on_rollback_failed = on_failed = finish


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _analysis_reason(scope: str, phase: str, run: Run) -> str:
    if run.message:
        # The engine's message already names the scope ("stage analysis: failed ...").
        return run.message if run.message.startswith(scope) else \
            f"{scope} analysis {phase}: {run.message}"
    reasons = [str(v.get("reason")) for v in run.verdicts if v.get("phase") != "pass"]
    return f"{scope} analysis {phase}: " + "; ".join(reasons)


def build_report(meta: Any, events: Iterable[Event], plan: Any | None = None) -> Report:
    """A rollout's journal, read into a Report; ``plan`` (if loaded) adds check thresholds.
    A journal that the engine's fold refuses (damaged by hand) is reported as far as it
    reads."""
    from rollout_cli.engine.state import RolloutState, apply
    from rollout_cli.errors import IllegalTransition

    created = getattr(meta, "created", None)
    report = Report(str(getattr(meta, "id", "")), str(getattr(meta, "plan_name", "")),
                    created.timestamp() if created is not None else None)
    builder = _Builder(report, plan)
    state = RolloutState(id=report.rollout_id, plan=report.plan)
    for event in events:
        with suppress(IllegalTransition):
            state = apply(state, event)
        builder.feed(event, state)
    return report


__all__ = ["Decision", "Report", "Rollback", "RollbackCall", "Series", "Stage",
           "build_report"]


def allowed_threshold(compare: Any) -> str:
    """A compare check's allowed change as a threshold on its estimate, the way charts
    draw thresholds: ``> +5%`` when higher is worse, ``< -5%`` when lower is."""
    higher = compare.worse == "higher"
    return f"{'>' if higher else '<'} {'+' if higher else '-'}{compare.allowed.text.lstrip('+')}"

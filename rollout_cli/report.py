"""A rollout's report: its journal folded into stages, decisions, rollbacks and per-check
series, ready for `rollout report` to render as Markdown, HTML or JSON.

Pure: it reads events one at a time and never holds the journal, so a long rollout's
report stays small (per-check points and analysis decisions are capped).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

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
    def __init__(self, report: Report, plan: Any | None) -> None:
        self.report = report
        self.plan = plan
        self.pending: dict[str, RollbackCall] = {}
        self.analysis_decisions = 0

    def stage_name(self, index: Any) -> str | None:
        for stage in reversed(self.report.stages):
            if stage.index == index:
                return stage.name
        return None

    def feed(self, event: Mapping[str, Any]) -> None:
        self.report.events += 1
        kind = str(event.get("type"))
        handler = getattr(self, "on_" + kind.replace("-", "_"), None)
        if handler is not None:
            handler(event, float(event.get("time") or 0.0))

    def decide(self, time: float, kind: str, reason: str, event: Mapping[str, Any],
               **extra: Any) -> None:
        stage = event.get("stage")
        name = self.stage_name(stage) if isinstance(stage, int) else None
        if name is None and self.report.stages:
            name = self.report.stages[-1].name
        self.report.decisions.append(Decision(time, kind, reason, name, event.get("who"),
                                              bool(event.get("forced")),
                                              bool(event.get("auto")), **extra))

    def end_open_stage(self, how: str) -> None:
        if self.report.stages and self.report.stages[-1].completed is None:
            self.report.stages[-1].ended = self.report.stages[-1].ended or how

    # One handler per event type the report uses; the others are ignored.

    def on_created(self, event: Mapping[str, Any], time: float) -> None:
        self.report.created = self.report.created or time

    def on_stage_started(self, event: Mapping[str, Any], time: float) -> None:
        pct = event.get("percentage")
        self.report.stages.append(Stage(int(event.get("stage") or 0), str(event.get("name")),
                                        float(pct) if pct is not None else None, time))

    def on_stage_completed(self, event: Mapping[str, Any], time: float) -> None:
        for stage in reversed(self.report.stages):
            if stage.index == event.get("stage"):
                stage.completed = time
                return

    def on_analysis(self, event: Mapping[str, Any], time: float) -> None:
        run = event.get("run") or {}
        scope = str(event.get("scope") or "stage")
        for verdict in run.get("verdicts") or []:
            self.series(str(verdict.get("check")), scope, verdict).add(
                time, _number(verdict.get("value")), str(verdict.get("phase")))
        phase = run.get("phase") or ("pass" if run.get("passed") else "inconclusive")
        if phase == "pass":
            return
        if self.analysis_decisions >= MAX_ANALYSIS_DECISIONS:
            self.report.omitted_decisions += 1
            return
        self.analysis_decisions += 1
        self.decide(time, "analysis", _analysis_reason(scope, phase, run), event)

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
            return
        bands = _BANDS.search(reason)
        if bands:
            series.pass_text, series.fail_text = bands["pass"], bands["fail"]
            series.thresholds = ", ".join(
                f"{label} {text}" for label, text in (("pass", bands["pass"]),
                                                      ("fail", bands["fail"])) if text)

    def on_gate_waiting(self, event: Mapping[str, Any], time: float) -> None:
        self.decide(time, "gate-waiting", "waiting for approval at the manual gate", event)

    def on_gate_approved(self, event: Mapping[str, Any], time: float) -> None:
        how = ("forced" if event.get("forced") else
               "automatically" if event.get("auto") else f"by {event.get('who')}")
        reason = f"gate approved {how}" + (f": {event['reason']}" if event.get("reason")
                                           else "")
        self.decide(time, "gate-approved", reason, event)

    def on_paused(self, event: Mapping[str, Any], time: float) -> None:
        self.decide(time, "paused", str(event.get("reason") or "paused"), event)

    def on_resumed(self, event: Mapping[str, Any], time: float) -> None:
        self.decide(time, "resumed", f"resumed by {event.get('who')}", event)

    def on_promoted_full(self, event: Mapping[str, Any], time: float) -> None:
        reason = "promoted through all remaining stages" + (
            f": {event['reason']}" if event.get("reason") else "")
        self.decide(time, "promoted-full", reason, event)

    def on_plan_changed(self, event: Mapping[str, Any], time: float) -> None:
        self.decide(time, "plan-changed", "continued with a changed plan", event)

    def on_note(self, event: Mapping[str, Any], time: float) -> None:
        self.decide(time, "note", str(event.get("text") or ""), event)

    def on_rollback_started(self, event: Mapping[str, Any], time: float) -> None:
        reason = str(event.get("reason") or "rollback")
        self.decide(time, "rollback-started", reason, event)
        self.report.rollbacks.append(Rollback(time, reason, event.get("who")))
        self.end_open_stage("rolled back")

    def on_intent(self, event: Mapping[str, Any], time: float) -> None:
        # Only rollback calls are itemised; the rest are the stages' own steps.
        if event.get("kind") != "rollback" or not self.report.rollbacks:
            return
        call = RollbackCall(str(event.get("call_id")), str(event.get("line") or ""))
        self.report.rollbacks[-1].calls.append(call)
        self.pending[call.call_id] = call

    def on_outcome(self, event: Mapping[str, Any], time: float) -> None:
        call = self.pending.pop(str(event.get("call_id")), None)
        if call is None:
            return
        call.ok = bool(event.get("ok"))
        call.status = event.get("status", event.get("exit_code"))
        call.error = event.get("error")
        call.attempts = event.get("attempts")
        call.elapsed = event.get("elapsed")

    def finish(self, event: Mapping[str, Any], time: float) -> None:
        kind = str(event.get("type"))
        reason = str(event.get("reason") or event.get("error") or "")
        self.report.outcome, self.report.outcome_reason, self.report.ended = kind, reason, time
        self.decide(time, kind, reason or kind, event)
        if self.report.rollbacks and kind in ("rolled-back", "rollback-failed"):
            self.report.rollbacks[-1].ended = time
            self.report.rollbacks[-1].outcome = kind
        self.end_open_stage(kind)

    on_succeeded = on_rolled_back = on_rollback_failed = on_failed = finish


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _analysis_reason(scope: str, phase: str, run: Mapping[str, Any]) -> str:
    message = str(run.get("message") or "")
    if message:
        # The engine's message already names the scope ("stage analysis: failed ...").
        return message if message.startswith(scope) else f"{scope} analysis {phase}: {message}"
    reasons = [str(v.get("reason")) for v in run.get("verdicts") or []
               if v.get("phase") != "pass"]
    return f"{scope} analysis round {run.get('rounds')} {phase}: " + "; ".join(reasons)


def build_report(meta: Any, events: Iterable[Mapping[str, Any]], plan: Any | None = None
                 ) -> Report:
    """Fold a rollout's journal into a Report; ``plan`` (if loaded) adds check thresholds."""
    created = getattr(meta, "created", None)
    report = Report(str(getattr(meta, "id", "")), str(getattr(meta, "plan_name", "")),
                    created.timestamp() if created is not None else None)
    builder = _Builder(report, plan)
    for event in events:
        builder.feed(event)
    return report


__all__ = ["Decision", "Report", "Rollback", "RollbackCall", "Series", "Stage",
           "build_report"]

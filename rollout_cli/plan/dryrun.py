"""`rollout plan`: the whole rollout laid out in order, templates filled, nothing sent."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rollout_cli.plan.calls import resolve_command, resolve_request, stand_in_variables
from rollout_cli.plan.durations import format_duration
from rollout_cli.plan.expressions import describe_bands
from rollout_cli.plan.loader import LoadedPlan
from rollout_cli.plan.models import Plan, RequestStep, Stage


@dataclass(frozen=True)
class TimelineRow:
    stage: str
    percentage: float | None
    bake_min: float
    bake_max: float
    gate: str
    checks: list[str]
    start_earliest: float
    start_latest: float
    end_earliest: float
    end_latest: float


@dataclass(frozen=True)
class PlannedCall:
    phase: str          # a stage name, or "rollback"
    kind: str           # request | run | traffic
    label: str
    line: str           # the redacted request line or command
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    idempotent: bool | None = None
    expect: str | None = None
    capture: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedCheck:
    name: str
    metric: str
    rule: str           # what is measured, the bands as written, the sample rules
    used_by: list[str]
    dry_run: bool
    bands: str          # what every value gets: "pass >= 0.95, fail < 0.90, inconclusive between"
    measure: str        # "modern_p95_ms: mean(10m) vs legacy_p95_ms; min 2 samples, no data: ..."


@dataclass(frozen=True)
class PlannedMetric:
    name: str
    provider: str       # its plan key: http, prometheus
    query: str          # the request or the PromQL, as written (secrets masked)
    unit: str | None


@dataclass(frozen=True)
class PlannedAnalysis:
    scope: list[str]    # the stages that run it ("background" for the plan-wide one)
    interval: float
    initial_delay: float
    checks: list[str]
    limits: str         # "failure_limit 0, inconclusive_limit 2, consecutive_error_limit 4"
    actions: str        # "on_failure rollback, on_inconclusive pause, on_error pause"


@dataclass(frozen=True)
class DryRun:
    plan: str
    file: str
    target: str
    timeline: list[TimelineRow]
    calls: list[PlannedCall]
    checks: list[PlannedCheck]
    rollback: list[PlannedCall]
    total_earliest: float
    total_latest: float
    metrics: list[PlannedMetric] = field(default_factory=list)
    analyses: list[PlannedAnalysis] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build(loaded: LoadedPlan) -> DryRun:
    plan = loaded.plan
    redact = loaded.redactor
    calls: list[PlannedCall] = []
    for stage in plan.stages:
        calls.extend(_stage_calls(plan, stage, stand_in_variables(plan, stage), redact))
    rollback_vars = stand_in_variables(plan, None)
    rollback = [_call(plan, "rollback", step, rollback_vars, redact) for step in plan.rollback]
    timeline = _timeline(plan)
    return DryRun(
        plan=plan.name, file=loaded.file, target=redact.text(plan.target.base_url),
        timeline=timeline, calls=calls, checks=_checks(plan), rollback=rollback,
        total_earliest=timeline[-1].end_earliest, total_latest=timeline[-1].end_latest,
        metrics=[PlannedMetric(name, metric.provider.key,
                               redact.text(metric.provider.describe(metric)), metric.unit)
                 for name, metric in plan.metrics.items()],
        analyses=_analyses(plan),
    )


def _analyses(plan: Plan) -> list[PlannedAnalysis]:
    """Each distinct analysis with the stages that run it, in the order they first do."""
    found: dict[Any, list[str]] = {}
    for stage in plan.stages:
        analysis = plan.analysis_for(stage)
        if analysis is not None:
            found.setdefault(analysis, []).append(stage.name)
    if plan.background_analysis is not None:
        found.setdefault(plan.background_analysis, []).append("background")
    return [PlannedAnalysis(
        scope, a.interval, a.initial_delay, list(a.checks),
        f"failure_limit {a.failure_limit}, inconclusive_limit {a.inconclusive_limit}, "
        f"consecutive_error_limit {a.consecutive_error_limit}",
        f"on_failure {a.on_failure}, on_inconclusive {a.on_inconclusive}, "
        f"on_error {a.on_error}") for a, scope in found.items()]


def _stage_calls(plan: Plan, stage: Stage, variables: dict[str, Any], redact) -> list[PlannedCall]:  # type: ignore[no-untyped-def]
    calls = [_call(plan, stage.name, step, variables, redact) for step in stage.steps]
    if stage.percentage is not None and plan.traffic is not None:
        traffic = _call(plan, stage.name, plan.traffic, variables, redact)
        label = f"set traffic to {stage.percentage:g}%"
        if plan.traffic.name:
            label = f"{plan.traffic.name}: {label}"
        calls.append(PlannedCall(**{**asdict(traffic), "kind": "traffic", "label": label}))
    return calls


def _call(plan: Plan, phase: str, step: Any, variables: dict[str, Any], redact) -> PlannedCall:  # type: ignore[no-untyped-def]
    if isinstance(step, RequestStep):
        request = resolve_request(plan, step, variables)
        expect = None
        if step.expect:
            parts = []
            if step.expect.status:
                parts.append("status " + "|".join(str(s) for s in step.expect.status))
            if step.expect.condition:
                parts.append(step.expect.condition)
            expect = ", ".join(parts) or None
        return PlannedCall(
            phase=phase, kind="request", label=step.name or "",
            line=redact.text(f"{request.method} {request.url}"),
            headers=redact.headers(request.headers),
            body=redact.data(request.json if request.json is not None else request.body),
            idempotent=request.idempotent, expect=expect, capture=dict(step.capture),
        )
    command = resolve_command(step, variables)
    return PlannedCall(phase=phase, kind="run", label=step.name or "",
                       line=redact.text(str(command)),
                       expect=f"exit {command.expect_exit}")


def _timeline(plan: Plan) -> list[TimelineRow]:
    rows = []
    earliest = latest = 0.0
    for stage in plan.stages:
        low = stage.bake.min if stage.bake else 0.0
        high = stage.bake.max if stage.bake else 0.0
        analysis = plan.analysis_for(stage)
        rows.append(TimelineRow(
            stage=stage.name, percentage=stage.percentage, bake_min=low, bake_max=high,
            gate=stage.gate, checks=list(analysis.checks) if analysis else [],
            start_earliest=earliest, start_latest=latest,
            end_earliest=earliest + low, end_latest=latest + high,
        ))
        earliest, latest = earliest + low, latest + high
    return rows


def _checks(plan: Plan) -> list[PlannedCheck]:
    users: dict[str, list[str]] = {name: [] for name in plan.checks}
    for stage in plan.stages:
        analysis = plan.analysis_for(stage)
        for name in analysis.checks if analysis else ():
            users[name].append(stage.name)
    if plan.background_analysis:
        for name in plan.background_analysis.checks:
            users[name].append("background")
    return [PlannedCheck(name, check.metric, describe_check(check), users[name], check.dry_run,
                         _verdicts(check), f"{check.metric}: {_subject(check)}; "
                                           f"{_sampling(check)}")
            for name, check in plan.checks.items()]


def _verdicts(check: Any) -> str:
    """What the check makes of what it measures: its bands, or a compare check's rule."""
    if check.compare is None:
        return describe_bands(check.pass_, check.fail)
    compare = check.compare
    allowed = f"{'+' if compare.worse == 'higher' else '-'}{compare.allowed.text.lstrip('+')}"
    return (f"fail when the {compare.confidence * 100:.4g}% interval of the change is "
            f"wholly beyond {allowed}, pass when wholly within it, inconclusive otherwise")


def describe_check(check: Any) -> str:
    """One line: what is measured and the bands, e.g. 'mean(30m) pass >= 0.95, fail < 0.90',
    or for a compare check its method, e.g. 'mann-whitney(1h) vs legacy_ms at 98%, allowed
    +5% (higher is worse)'."""
    if check.compare is not None:
        compare = check.compare
        unit = "samples" if compare.method == "mann-whitney" else "trials"
        return (f"{_subject(check)} at {compare.confidence * 100:.4g}%, allowed "
                f"{'+' if compare.worse == 'higher' else '-'}"
                f"{compare.allowed.text.lstrip('+')} ({compare.worse} is worse); "
                f"min {compare.least} {unit} a side, no data: {check.no_data}")
    bands = []
    if check.pass_:
        bands.append(f"pass {check.pass_}")
    if check.fail:
        bands.append(f"fail {check.fail}")
    return f"{_subject(check)} " + ", ".join(bands) + "; " + _sampling(check)


def _subject(check: Any) -> str:
    """What is judged: 'last', 'mean(30m) vs legacy_p95_ms', 'slope over 1h'."""
    if check.trend:
        return f"slope over {format_duration(check.trend)}"
    subject = check.compare.method if check.compare is not None else check.effective_aggregate
    if check.window:
        subject += f"({format_duration(check.window)})"
    if check.baseline:
        subject += f" vs {check.baseline}"
    if check.compare is not None and check.compare.trials:
        subject += f" (of {check.compare.trials} vs {check.compare.baseline_trials})"
    return subject


def _sampling(check: Any) -> str:
    if check.compare is not None:
        unit = "samples" if check.compare.method == "mann-whitney" else "trials"
        return f"min {check.compare.least} {unit} a side, no data: {check.no_data}"
    extra = [f"min {check.min_samples} samples"] if check.min_samples > 1 else []
    extra.append(f"no data: {check.no_data}")
    return ", ".join(extra)


__all__ = ["DryRun", "build", "describe_check", "format_duration"]

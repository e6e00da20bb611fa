"""How `validate`, `plan` and `schema` show themselves: text for people, JSON for machines."""

from __future__ import annotations

import json
from typing import Any

from rollout_cli.errors import Problem
from rollout_cli.plan.dryrun import DryRun, PlannedCall
from rollout_cli.plan.durations import format_duration
from rollout_cli.render.console import is_terminal, plain, stdout
from rollout_cli.words import counted


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2) if is_terminal() else json.dumps(data))


def validation_text(file: str, summary: str | None, problems: list[Problem]) -> None:
    for problem in problems:
        label = "warning: " if problem.severity == "warning" else ""
        text = f"{problem.file}:{problem.line}:{problem.column}: {label}{problem.message}"
        if problem.hint:
            text += f" (hint: {problem.hint})"
        plain(text, err=problem.severity != "warning")
    if summary is not None:
        plain(f"{file}: valid, {summary}")
    else:
        errors = sum(1 for p in problems if p.severity == "error")
        plain(f"{file}: invalid, {errors} error{'s' if errors != 1 else ''}", err=True)


def _hours(seconds: float) -> str:
    return format_duration(seconds)


def dry_run_text(dry: DryRun) -> None:
    from rich.table import Table

    console = stdout()
    console.print(f"Plan {dry.plan} ({dry.file}) against {dry.target}", markup=False)
    console.print("Dry run: nothing is sent.\n", markup=False)

    timeline = Table(title="Timeline", title_justify="left")
    for column in ("stage", "traffic", "bake", "gate", "starts", "ends", "analysis"):
        timeline.add_column(column, no_wrap=True)
    for row in dry.timeline:
        bake = "-" if row.bake_max == 0 else (
            _hours(row.bake_min) if row.bake_min == row.bake_max
            else f"{_hours(row.bake_min)}..{_hours(row.bake_max)}")
        timeline.add_row(
            row.stage, "-" if row.percentage is None else f"{row.percentage:g}%", bake, row.gate,
            _span(row.start_earliest, row.start_latest), _span(row.end_earliest, row.end_latest),
            counted(len(row.checks), "check") if row.checks else "-",
        )
    console.print(timeline)
    console.print(f"Total bake time: {_span(dry.total_earliest, dry.total_latest)} "
                  "(manual gates wait for a person on top of this)\n", markup=False)

    console.print("Calls, in order:", markup=False)
    phase = None
    for number, call in enumerate(dry.calls, 1):
        if call.phase != phase:
            phase = call.phase
            console.print(f"  [{phase}]", markup=False)
        console.print(_call_text(number, call), markup=False)

    console.print("\nMetrics:", markup=False)
    for metric in dry.metrics:
        unit = f" (in {metric.unit})" if metric.unit else ""
        console.print(f"  {metric.name}{unit}: {metric.query}", markup=False)

    console.print("\nAnalysis:", markup=False)
    for analysis in dry.analyses:
        console.print(f"  {', '.join(analysis.scope)}: every "
                      f"{format_duration(analysis.interval)}, the first measurement "
                      f"{format_duration(analysis.initial_delay)} after the traffic change; "
                      f"checks {', '.join(analysis.checks) or 'none'}\n"
                      f"       {analysis.limits}; {analysis.actions}", markup=False)

    console.print("\nChecks:", markup=False)
    for check in dry.checks:
        flag = "\n       dry run: shown, never acts" if check.dry_run else ""
        console.print(f"  {check.name}: {check.bands}\n       {check.measure}{flag}\n"
                      f"       used by: {', '.join(check.used_by) or 'nothing'}", markup=False)

    console.print("\nRollback, in order:", markup=False)
    if not dry.rollback:
        console.print("  (none: the plan has no rollback steps)", markup=False)
    for number, call in enumerate(dry.rollback, 1):
        console.print(_call_text(number, call), markup=False)


def _span(low: float, high: float) -> str:
    return _hours(low) if low == high else f"{_hours(low)}..{_hours(high)}"


def _call_text(number: int, call: PlannedCall) -> str:
    lines = [f"  {number:>3}. {call.line}"]
    if call.label:
        lines[0] += f"    # {call.label}"
    for name, value in call.headers.items():
        lines.append(f"       {name}: {value}")
    if call.body is not None:
        body = call.body if isinstance(call.body, str) else json.dumps(call.body)
        lines.append(f"       body: {body}")
    notes = []
    if call.expect:
        notes.append(f"expect {call.expect}")
    if call.capture:
        notes.append("capture " + ", ".join(f"{k} <- {v}" for k, v in call.capture.items()))
    if call.kind == "request" and call.idempotent is False:
        notes.append("not idempotent: never re-sent blindly")
    if notes:
        lines.append("       " + "; ".join(notes))
    return "\n".join(lines)

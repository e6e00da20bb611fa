"""Per-check lines for `rollout status`: latest value, thresholds, verdict, history."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rollout_cli.engine import RolloutState

BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None]) -> str:
    numbers = [v for v in values if v is not None]
    if not numbers:
        return ""
    low, high = min(numbers), max(numbers)
    span = high - low or 1.0
    return "".join(" " if v is None else BARS[round((v - low) / span * (len(BARS) - 1))]
                   for v in values)


def value_text(check: Any, value: float | None) -> str:
    """A verdict's value as its thresholds read: a slope in their unit (``+0.5/s``), a
    baseline check's difference in percent (``+40.3%``), else the number."""
    from rollout_cli.plan.expressions import display_unit

    if value is None:
        return "-"
    factor, suffix = display_unit(check.pass_, check.fail) if check is not None else (1.0, "")
    if suffix == "%":
        return f"{value * factor:+.1f}%"
    if suffix:
        return f"{value * factor:+.4g}{suffix}"
    return f"{value:.4g}"


def checks_data(state: RolloutState, plan: Any) -> list[dict[str, Any]]:
    """One row per judged check, newest verdict first in mind of the operator."""
    from rollout_cli.plan.dryrun import describe_check

    rows = []
    for scope, run in state.analyses.items():
        for verdict in run.verdicts:
            name = verdict["check"]
            history = state.history.get(name, ())
            check = plan.checks.get(name) if plan is not None else None
            rows.append({
                "scope": scope, "check": name, "value": verdict["value"],
                "shown": value_text(check, verdict["value"]),
                "verdict": verdict["phase"], "dry_run": verdict["dry_run"],
                "rule": describe_check(check) if check is not None else None,
                "reason": verdict["reason"],
                "history": [point[1] for point in history],
                "phases": [point[2] for point in history],
            })
    return rows


def runs_data(state: RolloutState) -> dict[str, dict[str, Any]]:
    return {scope: {"rounds": run.rounds, "failures": run.failures,
                    "inconclusives": run.inconclusives,
                    "consecutive_errors": run.consecutive_errors, "passed": run.passed,
                    "next_due": run.next_due, "phase": run.phase}
            for scope, run in state.analyses.items()}


def checks_lines(state: RolloutState, plan: Any) -> list[str]:
    lines = []
    for scope, counters in runs_data(state).items():
        lines.append(f"{scope} analysis: {counters['rounds']} rounds, failures "
                     f"{counters['failures']}, inconclusive {counters['inconclusives']}, "
                     f"consecutive errors {counters['consecutive_errors']}"
                     + (", passing" if counters["passed"] else ""))
    for row in checks_data(state, plan):
        value = row["shown"]
        flag = " (dry run)" if row["dry_run"] else ""
        lines.append(f"  {row['check']:<20} {row['verdict']:<12} {value:>10}  "
                     f"{sparkline(row['history']):<30} {row['rule'] or ''}{flag}")
    return lines

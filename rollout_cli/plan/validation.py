"""`rollout validate`: load each plan, collect errors and lint warnings, never raise."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollout_cli.errors import PlanError, Problem


@dataclass(frozen=True)
class ValidationReport:
    file: str
    problems: list[Problem]
    summary: str | None  # set when the plan is valid

    @property
    def valid(self) -> bool:
        return self.summary is not None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "valid": self.valid,
                "errors": [p.to_dict() for p in self.problems if p.severity == "error"],
                "warnings": [p.to_dict() for p in self.problems if p.severity == "warning"]}


def validate_file(path: Path, online: bool = False) -> ValidationReport:
    from rollout_cli.plan.dryrun import build
    from rollout_cli.plan.durations import format_duration
    from rollout_cli.plan.lint import lint
    from rollout_cli.plan.loader import load_plan
    from rollout_cli.words import counted

    try:
        loaded = load_plan(path)
    except PlanError as exc:
        return ValidationReport(str(path), exc.problems, None)
    dry = build(loaded)
    low, high = format_duration(dry.total_earliest), format_duration(dry.total_latest)
    summary = (f"{counted(len(loaded.plan.stages), 'stage')}, bake "
               + (low if low == high else f"{low}..{high}"))
    problems = lint(loaded)
    if online:
        from rollout_cli.plan.online import online_problems

        refused = online_problems(loaded)
        problems = refused + problems
        if any(p.severity == "error" for p in refused):
            return ValidationReport(str(path), problems, None)
    return ValidationReport(str(path), problems, summary)


def validate_files(paths: list[Path], online: bool = False) -> list[ValidationReport]:
    return [validate_file(path, online) for path in paths]

"""Warnings about plans that are valid but probably not what their author meant."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from rollout_cli.errors import Problem
from rollout_cli.plan.durations import format_duration
from rollout_cli.plan.loader import LoadedPlan
from rollout_cli.plan.models import Analysis, Plan, RequestStep, RunStep, Stage
from rollout_cli.plan.templates import names_in

MAX_CHECKS = 12


def lint(loaded: LoadedPlan) -> list[Problem]:
    plan, positions = loaded.plan, loaded.positions

    def warn(path: tuple[str | int, ...], message: str, hint: str | None = None) -> Problem:
        return positions.problem(path, message, hint, severity="warning")

    found: list[Problem] = []
    for index, stage in enumerate(plan.stages):
        found.extend(_stage(plan, index, stage, warn))
    found.extend(_percentages(plan, warn))
    if plan.background_analysis and len(plan.background_analysis.checks) > MAX_CHECKS:
        found.append(warn(("background", "checks"), _too_many(plan.background_analysis)))
    if not plan.rollback:
        found.append(warn(("stages",), "the plan has no rollback steps",
                          "add `rollback:` with the calls that undo the change"))
    found.extend(_rollback_captures(plan, warn))
    found.extend(_late_aborts(plan, warn))
    for index, notify in enumerate(plan.notify):
        if not notify.webhook and not _off_by_default(loaded, index):
            found.append(warn(("notify", index, "webhook"),
                              "notify webhook is empty; these notifications are off",
                              "write ${VARIABLE:-} to make them off unless it is set"))
    return sorted(found)


_EMPTY_DEFAULT = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-\}")


def _off_by_default(loaded: LoadedPlan, index: int) -> bool:
    """A webhook written ``${VAR:-}`` is empty on purpose: off unless VAR is set."""
    from rollout_cli.plan.yaml_source import read_document

    data, _ = read_document(loaded.raw, loaded.file)
    written = data["notify"][index].get("webhook")
    return isinstance(written, str) and _EMPTY_DEFAULT.fullmatch(written.strip()) is not None


def _too_many(analysis: Analysis) -> str:
    return (f"{len(analysis.checks)} checks in one analysis (more than {MAX_CHECKS}); "
            "consider splitting them between stage and background analysis")


def _stage(plan: Plan, index: int, stage: Stage, warn) -> Iterator[Problem]:  # type: ignore[no-untyped-def]
    analysis = plan.analysis_for(stage)
    here = ("stages", index)
    if stage.percentage is not None and analysis is None and stage.gate != "manual":
        yield warn((*here, "percentage"), f"stage {stage.name!r} moves traffic with no "
                   "analysis and no manual gate", "add checks or `gate: manual`")
    if analysis is None or stage.bake is None:
        return
    if len(analysis.checks) > MAX_CHECKS:
        yield warn((*here, "name"), _too_many(analysis))
    bake = stage.bake.max
    if analysis.interval > bake:
        yield warn((*here, "bake"), f"stage {stage.name!r}: analysis interval "
                   f"{format_duration(analysis.interval)} is longer than its bake "
                   f"{format_duration(bake)}", "the stage may end before one measurement")
    for name in analysis.checks:
        check = plan.checks[name]
        # A sequential compare adds up the stage's counts from its start: a window longer
        # than the bake is how it keeps every one of them.
        sequential = check.compare is not None and check.compare.method == "sequential"
        if check.span > bake and not sequential:
            yield warn((*here, "bake"), f"stage {stage.name!r}: check {name!r} looks at "
                       f"{format_duration(check.span)}, longer than the bake "
                       f"{format_duration(bake)}", "its window will hold earlier stages' data")


def _percentages(plan: Plan, warn) -> Iterator[Problem]:  # type: ignore[no-untyped-def]
    previous: float | None = None
    for index, stage in enumerate(plan.stages):
        if stage.percentage is None:
            continue
        if previous is not None and stage.percentage <= previous:
            yield warn(("stages", index, "percentage"),
                       f"stage {stage.name!r}: percentage {stage.percentage:g} does not "
                       f"increase on the previous {previous:g}")
        previous = stage.percentage


def _rollback_captures(plan: Plan, warn) -> Iterator[Problem]:  # type: ignore[no-untyped-def]
    """A rollback step using a value that only stages capture: `rollout rollback --plan`,
    which has no state, cannot fill it in."""
    staged = {name for _, step in plan.steps() if isinstance(step, RequestStep)
              for name in step.capture}
    captured: set[str] = set()
    for index, step in enumerate(plan.rollback):
        for name in sorted(set(names_in(_templated(step))) & (staged - captured)):
            yield warn(("rollback", index), f"rollback step {index + 1} uses {{{{ {name} }}}}, "
                       "which only stage steps capture: a rollback from the plan alone "
                       "(`rollout rollback --plan`) has no value for it",
                       "capture it inside the rollback, with a step before this one")
        if isinstance(step, RequestStep):
            captured.update(step.capture)


def _templated(step: RequestStep | RunStep) -> list[Any]:
    if isinstance(step, RequestStep):
        return [step.request.target, step.headers, step.json_body, step.body]
    run = [step.run] if isinstance(step.run, str) else list(step.run)
    return [*run, step.env, step.cwd]


def _late_aborts(plan: Plan, warn) -> Iterator[Problem]:  # type: ignore[no-untyped-def]
    moved = False
    for index, stage in enumerate(plan.stages):
        for number, step in enumerate(stage.steps):
            if moved and step.on_failure == "abort":
                yield warn(("stages", index, "steps", number, "on_failure"),
                           f"stage {stage.name!r}: `on_failure: abort` after traffic has moved "
                           "leaves it where it is when the step fails",
                           "abort suits read-only checks before the first percentage")
        moved = moved or stage.percentage is not None

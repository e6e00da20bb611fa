"""From a plan file to a validated, immutable Plan, or one PlanError listing every problem."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path as FsPath
from typing import Any

from rollout_cli.errors import PlanError, Problem
from rollout_cli.plan import semantics, sendable
from rollout_cli.plan.env import interpolate
from rollout_cli.plan.fields import PlanDataError, parse
from rollout_cli.plan.models import Plan
from rollout_cli.plan.problems import to_problems
from rollout_cli.plan.yaml_source import MAX_FILE_BYTES, Positions, read_document
from rollout_cli.redact import Redactor


@dataclass(frozen=True)
class LoadedPlan:
    plan: Plan
    file: str
    raw: bytes
    positions: Positions
    redactor: Redactor

    @cached_property
    def digest(self) -> str:
        """The file's sha256, which the state keeps; hashlib is imported only for it."""
        import hashlib

        return hashlib.sha256(self.raw).hexdigest()


def load_plan(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> LoadedPlan:
    file = str(path)
    try:
        # One byte more than the limit, and no more: a pipe or /dev/zero never ends.
        with FsPath(path).open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise PlanError([Problem(file, 1, 1, f"cannot read plan: {exc.strerror or exc}")]) \
            from exc
    return load_text(raw, file, os.environ if env is None else env)


def load_text(raw: bytes | str, file: str, env: Mapping[str, str]) -> LoadedPlan:
    read: list[Problem] = []     # a duplicate key does not stop the rest being checked
    data, positions = read_document(raw, file, read)
    if not isinstance(data, dict):
        raise PlanError([positions.problem((), "a plan is a mapping of keys",
                                           "start with `version: 1` and `name: ...`")])
    secret_names = {s for s in data.get("secrets") or [] if isinstance(s, str)} \
        if isinstance(data.get("secrets"), list) else set()
    job = interpolate(data, positions, env, secret_names)
    resolved: dict[str, Any] = job.data  # type: ignore[attr-defined]
    problems = [*read, *job.problems]
    plan: Plan | None = None
    try:
        plan = parse(Plan, resolved)
    except PlanDataError as exc:
        problems.extend(to_problems(exc.issues, positions))
    problems.extend(semantics.check(resolved, positions))
    if plan is not None:
        problems.extend(sendable.check(plan, positions))
    if problems:
        raise PlanError(_unique(problems))
    assert plan is not None
    redactor = Redactor(job.secret_values)
    for notify in plan.notify:
        redactor.add(notify.webhook)
    return LoadedPlan(plan, file, raw if isinstance(raw, bytes) else raw.encode(), positions,
                      redactor)


def _unique(problems: list[Problem]) -> list[Problem]:
    """One problem per place: a missing variable also breaks the value it was in."""
    seen: set[tuple[int, int]] = set()
    kept = []
    for problem in problems:
        where = (problem.line, problem.column)
        if where in seen:
            continue
        seen.add(where)
        kept.append(problem)
    return kept

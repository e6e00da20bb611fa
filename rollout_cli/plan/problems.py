"""Turn the models' issues into located, human messages with hints."""

from __future__ import annotations

import difflib
import typing
from typing import Any

from rollout_cli.errors import Problem
from rollout_cli.plan.fields import Issue
from rollout_cli.plan.yaml_source import Positions


def suggest(word: str, choices: typing.Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def to_problems(issues: list[Issue], positions: Positions) -> list[Problem]:
    """One problem per issue, except that the keys missing from one mapping are one
    problem naming them all (they share its place, where one would hide the others)."""
    missing: dict[tuple[Any, ...], list[Issue]] = {}
    problems = []
    for issue in issues:
        if issue.kind == "missing" and missing.setdefault(issue.loc[:-1], []):
            missing[issue.loc[:-1]].append(issue)
            continue
        if issue.kind == "missing":
            missing[issue.loc[:-1]].append(issue)
        problems.append(issue)
    return [_missing(missing[issue.loc[:-1]], positions) if issue.kind == "missing"
            else _problem(issue, positions) for issue in problems]


def _missing(issues: list[Issue], positions: Positions) -> Problem:
    if len(issues) == 1:
        return _problem(issues[0], positions)
    path = issues[0].loc
    parent = ".".join(str(p) for p in path[:-1]) or "plan"
    names = ", ".join(repr(str(issue.loc[-1])) for issue in issues)
    hint = "start the plan with `version: 1`" if ("version",) in [i.loc for i in issues] \
        else None
    return positions.problem(path, f"{parent}: missing required keys {names}", hint)


def _problem(issue: Issue, positions: Positions) -> Problem:
    path = issue.loc
    where = ".".join(str(p) for p in path) or "plan"
    if issue.kind == "unknown":
        key = str(path[-1])
        hint = suggest(key, issue.allowed) or "allowed here: " + ", ".join(issue.allowed)
        parent = ".".join(str(p) for p in path[:-1]) or "plan"
        return positions.problem(path, f"{parent}: {issue.message}", hint, key=True)
    if issue.kind == "missing":
        parent = ".".join(str(p) for p in path[:-1]) or "plan"
        hint = "start the plan with `version: 1`" if path == ("version",) else None
        return positions.problem(path, f"{parent}: missing required key {str(path[-1])!r}", hint)
    message = f"{where}: {issue.message}"
    if issue.kind == "type":
        message += f", got {_got(issue.value)}"
    # A complaint about a whole mapping reads best at its key ("checks.ok:" on line 13),
    # and so does one about a key followed by nothing.
    on_key = (isinstance(issue.value, dict) or issue.value is None) and path in positions.keys
    return positions.problem(path, message, issue.hint, key=on_key)

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
    return [_problem(issue, positions) for issue in issues]


def _problem(issue: Issue, positions: Positions) -> Problem:
    path = issue.loc
    where = ".".join(str(p) for p in path) or "plan"
    if issue.kind == "unknown":
        key = str(path[-1])
        hint = suggest(key, issue.allowed) or "allowed here: " + ", ".join(issue.allowed)
        return positions.problem(path, issue.message, hint, key=True)
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

"""Cross-reference checks over the raw document.

They run on the raw data, not on the validated model, so that a plan with a bad
duration still gets its unknown check names reported in the same pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from rollout_cli.errors import Problem
from rollout_cli.plan.problems import suggest
from rollout_cli.plan.templates import BUILTIN_VARIABLES, NAME, TEMPLATE
from rollout_cli.plan.yaml_source import Path, Positions

_REF_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _sequence(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _steps(data: dict[str, Any]) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every step-like mapping (stage steps, traffic, rollback) with its path."""
    if isinstance(data.get("traffic"), dict):
        yield ("traffic",), data["traffic"]
    for i, stage in enumerate(_sequence(data.get("stages"))):
        for j, step in enumerate(_sequence(_mapping(stage).get("steps"))):
            if isinstance(step, dict):
                yield ("stages", i, "steps", j), step
    for i, step in enumerate(_sequence(data.get("rollback"))):
        if isinstance(step, dict):
            yield ("rollback", i), step


def captured_names(data: dict[str, Any]) -> list[str]:
    return [name for _, step in _steps(data) for name in _mapping(step.get("capture"))]


def check(data: dict[str, Any], positions: Positions) -> list[Problem]:
    return [
        *_stage_names(data, positions),
        *_references(data, positions),
        *_traffic(data, positions),
        *_templates(data, positions),
        *_on_failure(data, positions),
    ]


def _on_failure(data: dict[str, Any], positions: Positions) -> Iterator[Problem]:
    """`on_failure` chooses between a rollback and none: only a stage's step has a choice."""
    for path, step in _steps(data):
        if "on_failure" in step and path[0] != "stages":
            yield positions.problem((*path, "on_failure"),
                                    f"`on_failure` is for a stage's steps, not {path[0]} ones",
                                    "a failed traffic call always rolls back; a failed "
                                    "rollback step never stops the others")


def _stage_names(data: dict[str, Any], positions: Positions) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for i, stage in enumerate(_sequence(data.get("stages"))):
        name = _mapping(stage).get("name")
        if not isinstance(name, str):
            continue
        if name in seen:
            line, _ = positions.of(("stages", seen[name], "name"))
            yield positions.problem(("stages", i, "name"), f"duplicate stage name {name!r}",
                                    f"first used on line {line}; stage names must be unique")
        else:
            seen[name] = i


def _parts(metrics: dict[str, Any]) -> dict[str, Any]:
    """Every name a check may use: the metrics, and ``x.part`` for a metric whose provider
    splits its answer into parts (``split: {label: ..., parts: [...]}``)."""
    names = dict(metrics)
    for name, spec in metrics.items():
        for under in _mapping(spec).values():
            split = _mapping(_mapping(under).get("split"))
            names.update((f"{name}.{part}", spec) for part in _sequence(split.get("parts"))
                         if isinstance(part, str))
    return names


def _references(data: dict[str, Any], positions: Positions) -> Iterator[Problem]:
    metrics = _mapping(data.get("metrics"))
    checks = _mapping(data.get("checks"))
    for table, names in (("metrics", metrics), ("checks", checks)):
        for name in names:
            if not _REF_NAME.match(name):
                yield positions.problem((table, name), f"bad name {name!r} in {table}",
                                        "use letters, digits, '_', '-' and '.'", key=True)
    measured = _parts(metrics)
    for name, spec in checks.items():
        compare = _mapping(_mapping(spec).get("compare"))
        for path, ref in [*(((key,), _mapping(spec).get(key)) for key in ("metric", "baseline")),
                          *((("compare", key), compare.get(key))
                            for key in ("trials", "baseline_trials"))]:
            if isinstance(ref, str) and ref not in measured:
                yield positions.problem(("checks", name, *path), f"check {name!r}: unknown "
                                        f"metric {ref!r}", _known(ref, measured))
    for path, analysis in _analyses(data):
        for k, ref in enumerate(_sequence(_mapping(analysis).get("checks"))):
            if isinstance(ref, str) and ref not in checks:
                yield positions.problem((*path, "checks", k), f"unknown check {ref!r}",
                                        _known(ref, checks))


def _analyses(data: dict[str, Any]) -> Iterator[tuple[Path, Any]]:
    for key in ("analysis", "background"):
        if key in data:
            yield (key,), data[key]
    for i, stage in enumerate(_sequence(data.get("stages"))):
        if "analysis" in _mapping(stage):
            yield ("stages", i, "analysis"), stage["analysis"]


def _known(ref: str, table: dict[str, Any]) -> str:
    hint = suggest(ref, table)
    if hint:
        return hint
    return "defined: " + (", ".join(sorted(table)) if table else "none")


def _traffic(data: dict[str, Any], positions: Positions) -> Iterator[Problem]:
    if "traffic" in data:
        return
    for i, stage in enumerate(_sequence(data.get("stages"))):
        if _mapping(stage).get("percentage") is not None:
            yield positions.problem(
                ("stages", i, "percentage"),
                f"stage {_mapping(stage).get('name')!r} sets a percentage, "
                "but the plan has no `traffic:` request to apply it",
                "add `traffic: {request: POST /..., json: {percent: '{{ percentage }}'}}`")
            return


def _template_sources(data: dict[str, Any]) -> Iterator[tuple[Path, Any]]:
    yield ("target", "headers"), _mapping(data.get("target")).get("headers")
    yield from _steps(data)
    for name, metric in _mapping(data.get("metrics")).items():
        yield ("metrics", name), metric


def _strings(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _templates(data: dict[str, Any], positions: Positions) -> Iterator[Problem]:
    known = set(BUILTIN_VARIABLES) | set(captured_names(data))
    for root, value in _template_sources(data):
        for path, text in _strings(value, root):
            if path and path[-1] in ("capture",):
                continue
            for name in TEMPLATE.findall(text):
                if not NAME.fullmatch(name):
                    yield positions.problem(path, f"template {{{{ {name} }}}} is not a name",
                                            "templates hold one variable name, nothing else")
                elif name not in known:
                    hint = suggest(name, known) or "known: " + ", ".join(sorted(known))
                    yield positions.problem(path, f"unknown template variable {name!r}", hint)

"""Turn pydantic's validation errors into located, human messages with hints."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from rollout_cli.errors import Problem
from rollout_cli.plan.models import Plan, RequestStep, RunStep
from rollout_cli.plan.yaml_source import Path, Positions

_STEP_TAGS = {"request": RequestStep, "run": RunStep}


def suggest(word: str, choices: typing.Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _field(model: type[BaseModel], key: str) -> Any:
    for name, field in model.model_fields.items():
        if (field.alias or name) == key:
            return field.annotation
    return None


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types an annotation may hold, looking through Optional/Annotated."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def walk(loc: tuple[Any, ...]) -> tuple[Path, type[BaseModel] | None]:
    """Map a pydantic loc to a document path, and name the model found at that path."""
    path: list[str | int] = []
    current: Any = Plan
    for element in loc:
        candidates = _unwrap(current)
        models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if set(models) == set(_STEP_TAGS.values()) and element in _STEP_TAGS:
            current = _STEP_TAGS[element]  # a discriminator tag, not a key
            continue
        containers = [c for c in candidates if typing.get_origin(c) in (list, dict, tuple)]
        path.append(element)
        if models and isinstance(element, str):
            current = _field(models[0], element)
        elif containers:
            current = typing.get_args(containers[0])[-1]
        else:
            current = None
    models = [c for c in _unwrap(current) if isinstance(c, type) and issubclass(c, BaseModel)]
    return tuple(path), (models[0] if len(models) == 1 else None)


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def to_problems(error: ValidationError, positions: Positions) -> list[Problem]:
    problems: list[Problem] = []
    for item in error.errors():
        loc = tuple(item["loc"])
        kind = item["type"]
        if kind == "extra_forbidden":
            path, _ = walk(loc)
            _, parent = walk(loc[:-1])
            key = str(loc[-1])
            hint = suggest(key, _keys_of(parent)) if parent else None
            if parent and not hint:
                hint = "allowed here: " + ", ".join(_keys_of(parent))
            problems.append(positions.problem(path, f"unknown key {key!r}", hint, key=True))
            continue
        path, _ = walk(loc)
        # A complaint about a whole mapping reads best at its key ("checks.ok:" on line 13).
        on_key = isinstance(item.get("input"), dict) and path in positions.keys
        problems.append(positions.problem(path, _message(item, path), _hint(item), key=on_key))
    return problems


def _message(item: Any, path: Path) -> str:
    kind, msg = item["type"], item["msg"]
    where = ".".join(str(p) for p in path) or "plan"
    if kind == "missing":
        parent = ".".join(str(p) for p in path[:-1]) or "plan"
        return f"{parent}: missing required key {str(path[-1])!r}"
    if kind == "value_error":
        return f"{where}: {msg.removeprefix('Value error, ')}"
    if kind == "step_kind":
        return f"{where}: {msg}"
    text = msg.replace("Input should be", "must be")
    if not text.startswith("must"):
        text = text[0].lower() + text[1:]
    return f"{where}: {text}, got {_got(item.get('input'))}"


def _hint(item: Any) -> str | None:
    if item["type"] == "missing" and item["loc"] and item["loc"][-1] == "version":
        return "start the plan with `version: 1`"
    if item["type"] == "step_kind":
        return "e.g. `- request: GET /health` or `- run: [npm, run, build]`"
    return None

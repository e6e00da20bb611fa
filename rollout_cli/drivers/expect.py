"""Judging a response: status, JMESPath conditions and captures. Pure functions.

Every check returns ``None`` when satisfied and a message otherwise; messages carry the
expression and the value it produced, so the caller must redact them before printing.
Truthiness is JMESPath's, not Python's: ``0`` is true, while ``""``, ``[]``, ``{}``,
``false`` and ``null`` are false, so a condition means the same here as inside ``&&``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

VALUE_PREVIEW_LIMIT = 200


class FieldPath:
    """A JMESPath expression that only names fields (``variants.modern.successRate``), read
    without JMESPath's tree interpreter, which costs several times more per search. Same
    answers: the field of an object, null for anything else or once a step is null."""

    def __init__(self, expression: str, names: tuple[str, ...]):
        self.expression = expression
        self._names = names

    def search(self, value: Any) -> Any:
        for name in self._names:
            if not isinstance(value, dict):
                return None
            value = value.get(name)
        return value


@lru_cache(maxsize=512)
def compile_expression(expression: str) -> ParsedResult | FieldPath:
    """Parse once per distinct expression; plans re-evaluate the same ones every poll."""
    parsed = jmespath.compile(expression)
    names = _field_names(parsed.parsed)
    return parsed if names is None else FieldPath(expression, names)


def _field_names(node: dict[str, Any]) -> tuple[str, ...] | None:
    """The names of ``a.b.c`` as JMESPath parsed it; None for any other expression."""
    if node["type"] == "field":
        return (node["value"],)
    if node["type"] == "subexpression":
        names: tuple[str, ...] = ()
        for child in node["children"]:
            found = _field_names(child)
            if found is None:
                return None
            names += found
        return names
    return None


def check_status(status: int | None, expected: list[int] | None) -> str | None:
    """None when ``status`` is expected; any 2xx when ``expected`` is None or empty."""
    if status is None:
        return "no response received"
    if expected:
        if status in expected:
            return None
        wanted = str(expected[0]) if len(expected) == 1 else f"one of {sorted(expected)}"
        return f"status {status}, expected {wanted}"
    return None if 200 <= status < 300 else f"status {status}, expected 2xx"


def check_condition(doc: Any, jmespath_expr: str) -> str | None:
    """None when the expression evaluates to a JMESPath-true value on ``doc``."""
    try:
        value = compile_expression(jmespath_expr).search(doc)
    except JMESPathError as exc:
        return f"condition {jmespath_expr!r} could not be evaluated: {_first_line(exc)}"
    if _is_true(value):
        return None
    return f"condition {jmespath_expr!r} is not true: it produced {preview(value)}"


def capture(doc: Any, captures: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Values for each ``name -> expression``; a null result is an error, never a None."""
    values: dict[str, Any] = {}
    errors: list[str] = []
    for name, expression in captures.items():
        try:
            value = compile_expression(expression).search(doc)
        except JMESPathError as exc:
            errors.append(
                f"capture {name!r}: {expression!r} could not be evaluated: {_first_line(exc)}"
            )
            continue
        if value is None:
            errors.append(f"capture {name!r}: {expression!r} matched nothing (null)")
        else:
            values[name] = value
    return values, errors


def preview(value: Any) -> str:
    """A value as compact JSON, cut short enough for a one-line message."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) <= VALUE_PREVIEW_LIMIT:
        return text
    return text[: VALUE_PREVIEW_LIMIT - 1] + "…"


BODY_EXCERPT_LIMIT = 300


def body_excerpt(doc: Any, text: str, redactor: Any) -> str:
    """The start of an answer's body for a failure's message: its JSON compact with
    secret-named keys and known secrets masked, else its text on one line; cut short."""
    if doc is not None:
        shown = json.dumps(redactor.data(doc), ensure_ascii=False, default=str)
    else:
        shown = redactor.text(" ".join(text.split()))
    if len(shown) <= BODY_EXCERPT_LIMIT:
        return shown
    return shown[: BODY_EXCERPT_LIMIT - 1] + "…"


def _is_true(value: Any) -> bool:
    # Equality checks on purpose: in JMESPath 0 is true and False == 0 must not leak in.
    return not (value is None or value is False or value in ("", [], {}))


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

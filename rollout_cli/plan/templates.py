"""``{{ name }}`` templates, filled at run time from the rollout's variables.

A string that is exactly one template keeps the value's type, so
``{rolloutPercentage: "{{ percentage }}"}`` sends the number 25, not the text "25".
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

TEMPLATE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

BUILTIN_VARIABLES = ("percentage", "stage", "rollout_id", "plan", "interval", "rate_window")


class MissingVariable(KeyError):
    def __init__(self, name: str):
        self.name = name
        super().__init__(name)


def names_in(value: Any) -> list[str]:
    """Every template name used anywhere in a JSON-like value."""
    if isinstance(value, str):
        return TEMPLATE.findall(value)
    if isinstance(value, dict):
        return [n for v in value.values() for n in names_in(v)]
    if isinstance(value, list | tuple):
        return [n for v in value for n in names_in(v)]
    return []


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value)


def render(value: Any, variables: Mapping[str, Any]) -> Any:
    """Fill templates in a JSON-like value; raises MissingVariable for an unknown name."""
    if isinstance(value, str):
        whole = TEMPLATE.fullmatch(value.strip())
        if whole:
            return _lookup(whole.group(1), variables)
        return TEMPLATE.sub(lambda m: _text(_lookup(m.group(1), variables)), value)
    if isinstance(value, dict):
        return {k: render(v, variables) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render(v, variables) for v in value]
    return value


def render_text(value: str, variables: Mapping[str, Any]) -> str:
    return TEMPLATE.sub(lambda m: _text(_lookup(m.group(1), variables)), value)


def _lookup(name: str, variables: Mapping[str, Any]) -> Any:
    if name not in variables:
        raise MissingVariable(name)
    value = variables[name]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value

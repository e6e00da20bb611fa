"""Durations as people write them in query strings and scenario files: ``30s``, ``5m``, ``1h``."""

from __future__ import annotations

import functools
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: str | float | int) -> float:
    """Seconds from ``90``, ``"90"``, ``"90s"``, ``"5m"``, ``"1.5h"``; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 30s, 5m or 1h, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {value!r}")
        return float(value)
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(f"expected a duration like 30s, 5m or 1h, got {value!r}")
    number, unit = match.groups()
    return float(number) * _UNITS[unit or "s"]


@functools.lru_cache(maxsize=64)  # reports spell the same few windows on every answer
def format_duration(seconds: float) -> str:
    """The shortest exact spelling: 300 -> ``5m``, 3600 -> ``1h``, 45 -> ``45s``."""
    for unit in ("d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"

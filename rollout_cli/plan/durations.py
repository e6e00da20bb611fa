"""Durations as people write them: ``500ms``, ``30s``, ``5m``, ``2h``, ``1h30m``, ``1d``."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")


def parse_duration(text: object) -> float:
    """Seconds in ``text``; raises ValueError with a hint on anything else."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError(f"expected a duration like 30s, 5m or 1h30m, got {text!r}")
    if isinstance(text, int | float):
        if text == 0:
            return 0.0
        raise ValueError(f"duration {text!r} has no unit; write {text}s, {text}m or {text}h")
    compact = text.strip().replace(" ", "")
    if compact == "0":
        return 0.0
    if not _WHOLE.fullmatch(compact):
        raise ValueError(f"bad duration {text!r}; write it like 30s, 5m, 2h or 1h30m")
    return sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(compact))


def format_duration(seconds: float) -> str:
    """The shortest exact spelling in hours at most: 5400 -> '1h30m', 0.5 -> '500ms'."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    parts = []
    remaining = round(seconds)
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)

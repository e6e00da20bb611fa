"""Durations as people write them: ``500ms``, ``30s``, ``5m``, ``2h``, ``1h30m``, ``1d``."""

from __future__ import annotations

import math
import re

from rollout_cli.plan.fields import Refused

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")

# No rollout waits, bakes or times out for longer; a bigger number is a typo in the unit.
CEILING = 365 * 86400.0
_CEILING_HINT = "durations go up to 365d; is the number or its unit mistyped?"


def parse_duration(text: object) -> float:
    """Seconds in ``text``, 0 to 365 days; raises ValueError with a hint on anything else."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError(f"expected a duration like 30s, 5m or 1h30m, got {text!r}")
    if isinstance(text, int | float):
        if text == 0:
            return 0.0
        if not math.isfinite(text):
            raise Refused(f"duration {text!r} is not a finite number",
                          "write a duration like 30s, 5m or 2h")
        shown = _shown(text)
        raise ValueError(f"duration {shown} has no unit; write {shown}s, {shown}m or {shown}h")
    compact = text.strip().replace(" ", "")
    if compact == "0":
        return 0.0
    if not _WHOLE.fullmatch(compact):
        raise ValueError(f"bad duration {_shown(text)}; write it like 30s, 5m, 2h or 1h30m")
    seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(compact))
    if seconds > CEILING:  # an overflowing number of digits gives inf, which is too
        raise Refused(f"duration {_shown(text)} is longer than 365d", _CEILING_HINT)
    return seconds


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


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

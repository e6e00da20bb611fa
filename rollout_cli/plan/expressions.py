"""The check-expression grammar. Parsed, never evaluated with ``eval``.

    expression := operator number [unit]
    operator   := ">=" | "<=" | "==" | "!=" | ">" | "<"
    number     := ["+" | "-"] digits ["." digits] [("e"|"E") ["+"|"-"] digits]
    unit       := "%"                 relative to a baseline metric
                | "/s" | "/m" | "/h" | "/d"   a slope, for trend checks

Examples: ``>= 0.95``, ``< 0.90``, ``> +20%``, ``<= +0%``, ``> 50/h``, ``== 0``.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

_GRAMMAR = re.compile(
    r"\s*(?P<op>>=|<=|==|!=|>|<)\s*"
    r"(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*"
    r"(?P<unit>%|/[smhd])?\s*"
)
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, "==": operator.eq,
    "!=": operator.ne, ">": operator.gt, "<": operator.lt,
}
# Slope units, per hour: what a slope threshold is kept in, and charts show it by.
PER_HOUR = {"/s": 3600.0, "/m": 60.0, "/h": 1.0, "/d": 1 / 24}

Kind = Literal["absolute", "relative", "slope"]


@dataclass(frozen=True)
class Threshold:
    """A parsed comparison. ``value`` is a ratio for relative (20% -> 0.2), per hour for slopes."""

    op: str
    value: float
    kind: Kind
    text: str

    def holds(self, observed: float) -> bool:
        return _OPERATORS[self.op](observed, self.value)

    @property
    def unit(self) -> str:
        """The unit written: "%", "/s" ... "/d", or "" for a plain number."""
        match = _GRAMMAR.fullmatch(self.text)
        return (match["unit"] or "") if match else ""

    def __str__(self) -> str:
        return self.text


def parse_threshold(text: object) -> Threshold:
    """Parse ``text``; raises ValueError with a hint when it is not in the grammar."""
    if isinstance(text, bool):
        raise ValueError(f"expected a comparison like '>= 0.95', got {text!r}")
    if isinstance(text, int | float):
        raise ValueError(f"expected a comparison like '>= {text}', got a bare number")
    if not isinstance(text, str):
        raise ValueError(f"expected a comparison like '>= 0.95', got {text!r}")
    match = _GRAMMAR.fullmatch(text)
    if not match:
        raise ValueError(f"bad expression {text!r}; write an operator and a number, "
                         "like '>= 0.95', '> +20%' or '> 50/h'")
    number = float(match["number"])
    if not math.isfinite(number):
        raise ValueError(f"bad expression {text!r}: the number must be finite")
    unit = match["unit"]
    if unit == "%":
        return Threshold(match["op"], number / 100.0, "relative", text.strip())
    if unit:
        return Threshold(match["op"], number * PER_HOUR[unit], "slope", text.strip())
    return Threshold(match["op"], number, "absolute", text.strip())


def display_unit(*thresholds: Threshold | None) -> tuple[float, str]:
    """How a judged value reads beside these thresholds, as (factor, suffix): a ratio to a
    baseline in percent (100, "%"), a slope (judged per hour) in the unit its thresholds
    are written in (1/3600, "/s"), anything else as it is (1, "")."""
    for threshold in thresholds:
        if threshold is not None and threshold.kind == "relative":
            return 100.0, "%"
        if threshold is not None and threshold.kind == "slope":
            return 1 / PER_HOUR[threshold.unit], threshold.unit
    return 1.0, ""


def slope_text(per_hour: float, *thresholds: Threshold | None) -> str:
    """A slope in the unit its thresholds are written in (``+0.03/s`` next to ``<= 4/s``),
    per hour when none is a slope."""
    factor, unit = display_unit(*thresholds)
    if unit in ("", "%"):
        factor, unit = 1.0, "/h"
    return f"{per_hour * factor:+.4g}{unit}"


def describe_bands(passing: Threshold | None, failing: Threshold | None) -> str:
    """What a check with these bands makes of every value, as the engine judges it: with
    one band, every other value gets the other verdict (Argo Rollouts' convention); with
    both, values in neither are inconclusive, and fail wins where they overlap.

    ``pass >= 0.95, fail < 0.90, inconclusive between`` / ``fail > 0, pass otherwise``.
    """
    if failing is None:
        assert passing is not None
        return f"pass {passing}, fail otherwise"
    if passing is None:
        return f"fail {failing}, pass otherwise"
    # Both bands are unions of intervals that end at the two thresholds, so these values
    # meet every region of the line: each threshold, between them, and beyond each.
    low, high = sorted((passing.value, failing.value))
    probes = (low - 1, low, (low + high) / 2, high, high + 1)
    text = f"pass {passing}, fail {failing}"
    if any(passing.holds(x) and failing.holds(x) for x in probes):
        text += ", fail where they overlap"
    neither = [x for x in probes if not passing.holds(x) and not failing.holds(x)]
    if neither:
        text += ", inconclusive " + ("between" if all(low <= x <= high for x in neither)
                                     else "otherwise")
    return text

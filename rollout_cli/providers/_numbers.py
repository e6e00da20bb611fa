"""What an answer's value may be: only numbers are numbers.

A value is a number, a series (a list of numbers, each a sample taken at the moment of the
answer) or None, which is no data and never 0. Anything else a provider reads is an error
measurement (``ProviderError``) that says what it got, so that true never passes as 1 nor
an object as a number.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rollout_cli.drivers.expect import preview

if TYPE_CHECKING:
    from rollout_cli.drivers.http import HttpOutcome

Value = float | list[float] | None

_KINDS = {bool: "a boolean", str: "a string", dict: "an object", list: "a list"}


class ProviderError(Exception):
    """A measurement that failed; the message is shown to the operator."""


def _reading(value: Any) -> float | None:
    """A number, or a string that spells one; None for null and for NaN or infinity (no
    data). Anything else raises ValueError: true is not 1, nor an object a number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(value)
    number = float(value)
    return number if math.isfinite(number) else None


def number(value: Any, what: str) -> float | None:
    """``value`` as a number, None for no data; ``what`` names where it came from in the
    error (``select variants.modern``, ``the query``)."""
    try:
        return _reading(value)
    except ValueError:
        kind = _KINDS.get(type(value), type(value).__name__)
        raise ProviderError(f"{what} gave {preview(value)} ({kind}), not a number") from None


def series(values: list[Any], what: str) -> list[float] | None:
    """A list of numbers is a series (nulls are gaps); a list holding anything else is an
    error, never a series of what could be read from it."""
    found = []
    for value in values:
        try:
            reading = _reading(value)
        except ValueError:
            raise ProviderError(f"{what} gave {preview(values)}, and {preview(value)} is not "
                                "a number") from None
        if reading is not None:
            found.append(reading)
    return found or None


def require_ok(outcome: HttpOutcome) -> None:
    """An answer with a 2xx status, or a ProviderError saying what came instead."""
    if outcome.status is None:
        raise ProviderError(outcome.error or "no answer")
    if not 200 <= outcome.status < 300:
        raise ProviderError(f"HTTP {outcome.status}")

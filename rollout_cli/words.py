"""Counts in words (``1 sample``, ``2 samples``), and the gist of a line without them."""

from __future__ import annotations

import re

_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?%?")


def counted(number: int, noun: str, plural: str | None = None) -> str:
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def gist(text: str) -> str:
    """``text`` without its numbers (and their plurals): lines that differ only in them
    say the same thing again, and are collapsed where repeats are noise."""
    return re.sub(r"\b(sample|answer|check)s\b", r"\1", _NUMBER.sub("#", text))

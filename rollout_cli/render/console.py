"""Consoles for people (rich, colour when allowed), plain lines, and the error printer.

Lines without style (errors, `validate`'s findings) are written with ``plain``, which
needs no rich: importing rich costs about 40 ms, a tenth of a whole `rollout validate`.
"""

from __future__ import annotations

import os
import sys
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from rollout_cli.errors import RolloutError


def _no_color() -> bool:
    return bool(os.environ.get("NO_COLOR")) or os.environ.get("ROLLOUT_NO_COLOR") == "1"


def _make(stderr: bool) -> Console:
    from rich.console import Console

    console = Console(stderr=stderr, no_color=_no_color(), highlight=False, soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 120  # logs and pipes are wider than rich's default of 80
    return console


@cache
def stdout() -> Console:
    return _make(stderr=False)


@cache
def stderr() -> Console:
    return _make(stderr=True)


def plain(text: str, *, err: bool = False) -> None:
    """One line as it is: no markup, colour, emoji codes or wrapping."""
    print(text, file=sys.stderr if err else sys.stdout)


def is_terminal() -> bool:
    return sys.stdout.isatty()


def print_error(exc: RolloutError) -> None:
    from rollout_cli.errors import PlanError

    if isinstance(exc, PlanError):
        for problem in exc.problems:
            plain(str(problem), err=True)
        count = len(exc.problems)
        plain(f"{count} error{'s' if count != 1 else ''}; nothing was run.", err=True)
        return
    plain(f"error: {exc}", err=True)

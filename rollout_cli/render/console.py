"""Consoles for people (rich, colour when allowed) and the error printer."""

from __future__ import annotations

import os
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


def print_error(exc: RolloutError) -> None:
    from rollout_cli.errors import PlanError

    console = stderr()
    if isinstance(exc, PlanError):
        for problem in exc.problems:
            console.print(str(problem), markup=False)
        count = len(exc.problems)
        console.print(f"{count} error{'s' if count != 1 else ''}; nothing was run.", markup=False)
        return
    console.print(f"error: {exc}", markup=False)

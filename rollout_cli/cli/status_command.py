"""`rollout status`: where a rollout stands, once or until it ends (--watch)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer

from rollout_cli.cli.options import OUTPUT, ROLLOUT, STATE, STATE_DIR, Output, context


def status(
    cli: typer.Context,
    rollout: str | None = ROLLOUT,
    watch: bool = typer.Option(False, "--watch", "-w", help="Refresh until the rollout ends."),
    output: Output = OUTPUT,
    state: str | None = STATE,
    state_dir: str | None = STATE_DIR,
) -> None:
    """Where a rollout stands. Exit 0 running or succeeded, 1 rolled back or failed,
    3 waiting on a person, 5 rollback incomplete."""
    import itertools

    from rollout_cli import operations

    ctx = context(cli, output)
    reports = operations.watch(ctx, rollout) if watch else iter([operations.status(ctx, rollout)])
    first = next(reports)
    reports = itertools.chain([first], reports)
    if watch and output is Output.text and first.plan is not None and _on_terminal():
        last = _live(reports)
    else:
        last = _printed(reports, output)
    raise typer.Exit(last.exit_code)


def _printed(reports: Iterator[Any], output: Output) -> Any:
    """Print each report that differs from the one before (--watch); the last."""
    import time

    from rollout_cli.render.rollout_view import print_status

    shown = None
    for report in reports:
        if report.state.seq != shown:
            print_status(report, time.time(), output.value)
            shown = report.state.seq
    return report


def _on_terminal() -> bool:
    from rollout_cli.render.console import stdout

    return stdout().is_terminal


def _live(reports: Iterator[Any]) -> Any:
    """`status --watch` on a terminal: the live view, redrawn on every report; the last."""
    import time

    from rich.live import Live

    from rollout_cli.render.console import stdout
    from rollout_cli.render.live_view import render

    with Live(console=stdout(), refresh_per_second=2) as live:
        for report in reports:
            live.update(render(report.plan, report.state, report.recent, time.time()))
    return report

"""`rollout status`: where a rollout stands, once or until it ends (--watch)."""

from __future__ import annotations

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
    import time

    from rollout_cli import operations
    from rollout_cli.render.rollout_view import print_status

    ctx = context(cli, output)
    if watch and output is Output.text and _watch_live(ctx, rollout):
        return
    last = None
    while True:
        report = operations.status(ctx, rollout)
        # Here, not above: with no rollout to show, status ends without the engine.
        from rollout_cli.engine.phases import TERMINAL

        if not watch or report.state.seq != last:
            print_status(report, time.time(), output.value)
            last = report.state.seq
        if not watch or report.state.phase in TERMINAL:
            raise typer.Exit(report.exit_code)
        time.sleep(1.0)


def _watch_live(ctx: Any, rollout: str | None) -> bool:
    """`status --watch` on a terminal: the live view, redrawn every second until the end."""
    import time

    from rollout_cli import operations
    from rollout_cli.engine.phases import TERMINAL
    from rollout_cli.render.console import stdout

    if not stdout().is_terminal:
        return False
    from rich.live import Live

    from rollout_cli.render.live_view import render

    report = operations.status(ctx, rollout)
    if report.plan is None:
        return False
    with Live(console=stdout(), refresh_per_second=2) as live:
        while True:
            report = operations.status(ctx, rollout)
            live.update(render(report.plan, report.state, report.recent, time.time()))
            if report.state.phase in TERMINAL:
                break
            time.sleep(1.0)
    raise typer.Exit(report.exit_code)

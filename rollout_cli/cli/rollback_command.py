"""`rollout rollback`: the plan's rollback steps, from a rollout's state or the plan alone."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from rollout_cli.cli.options import OUTPUT, ROLLOUT, STATE, STATE_DIR, Output, context
from rollout_cli.cli.running import interruptible


def rollback(
    cli: typer.Context,
    rollout: str | None = ROLLOUT,
    plan: Path | None = typer.Option(None, "--plan",
                                     help="Roll back from the plan file alone (no state needed)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    reason: str | None = typer.Option(None, "--reason", help="Why; recorded and notified."),
    resend: bool = typer.Option(
        False, "--resend", help="An interrupted rollback's non-idempotent call in flight: "
                                "send it again."),
    assume_applied: bool = typer.Option(
        False, "--assume-applied", help="An interrupted rollback's non-idempotent call in "
                                        "flight: it did reach the target."),
    output: Output = OUTPUT,
    state: str | None = STATE,
    state_dir: str | None = STATE_DIR,
    lock_timeout: str = typer.Option("30s", "--lock-timeout",
                                     help="Wait this long for another process's lock."),
) -> None:
    """Run the plan's rollback steps in order, each retried; safe to run twice.

    Ends rolled-back (exit 1) or rollback-failed naming what failed (exit 5). Without
    ROLLOUT or --plan it acts on the one active rollout only; name a finished one to roll
    it back again. On a terminal it shows the rollout and the calls, then asks.
    """
    from rollout_cli import operations
    from rollout_cli.errors import UsageError

    ctx = context(cli, output, lock_timeout)
    if not yes:
        from rollout_cli.render.rollout_view import print_rollback_preview

        if not sys.stdin.isatty():
            raise UsageError("rollback needs --yes when there is no terminal to confirm on")
        aside = output is not Output.text    # stdout carries the JSON result
        print_rollback_preview(operations.rollback_preview(ctx, rollout, plan), err=aside)
        if not typer.confirm("Roll back?", err=aside):
            raise typer.Exit(2)
    interruptible(ctx, lambda: operations.rollback(ctx, rollout, plan, reason, resend,
                                                   assume_applied), output, rollout)

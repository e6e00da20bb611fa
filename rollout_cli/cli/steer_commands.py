"""`rollout advance`, `pause` and `resume`: an operator steering a rollout."""

from __future__ import annotations

from pathlib import Path

import typer

from rollout_cli.cli.options import (
    ACCEPT,
    AUTO_APPROVE,
    FOLLOW,
    LOCK_TIMEOUT,
    OUTPUT,
    ROLLOUT,
    STATE,
    STATE_DIR,
    Output,
    context,
)
from rollout_cli.cli.running import finish, interruptible, resume_options


def advance(
    cli: typer.Context,
    rollout: str | None = ROLLOUT,
    force: bool = typer.Option(False, "--force", help="Skip an unfinished bake or analysis."),
    reason: str | None = typer.Option(None, "--reason", help="Why; recorded in the journal."),
    full: bool = typer.Option(False, "--full",
                              help="Promote through all remaining stages (skip bakes, gates)."),
    stage: str | None = typer.Option(
        None, "--stage", metavar="NAME",
        help="The stage whose gate you mean (its name, or its index as in --output json); "
             "if the rollout is elsewhere, nothing is done and the exit code is 3."),
    follow: bool = FOLLOW,
    accept_plan_change: bool = ACCEPT,
    output: Output = OUTPUT,
    state: str | None = STATE,
    state_dir: str | None = STATE_DIR,
    lock_timeout: str = LOCK_TIMEOUT,
) -> None:
    """Open the current gate and continue. Refuses mid-bake unless --force --reason.

    With --stage NAME, only that stage's gate: an advance that arrives after another one
    moved the rollout on does nothing (exit 3).
    """
    from rollout_cli import operations

    ctx = context(cli, output, lock_timeout)
    interruptible(ctx, lambda: operations.advance(ctx, rollout, force, reason, full, follow,
                                                  accept_plan_change, stage), output,
                  rollout, resume_options(follow))


def pause(
    cli: typer.Context,
    rollout: str | None = ROLLOUT,
    reason: str | None = typer.Option(None, "--reason", help="Why; shown in status."),
    output: Output = OUTPUT,
    state: str | None = STATE,
    state_dir: str | None = STATE_DIR,
    lock_timeout: str = LOCK_TIMEOUT,
) -> None:
    """Pause a rollout: nothing more is sent until `rollout resume` or `advance`."""
    from rollout_cli import operations

    ctx = context(cli, output, lock_timeout)
    finish(operations.pause(ctx, rollout, reason), output)


def resume(
    cli: typer.Context,
    rollout: str | None = ROLLOUT,
    follow: bool = FOLLOW,
    assume_applied: bool = typer.Option(False, "--assume-applied",
                                         help="An uncertain call did reach the target."),
    resend: bool = typer.Option(False, "--resend", help="Send an uncertain call again."),
    capture: list[str] = typer.Option(
        [], "--capture", metavar="NAME=VALUE",
        help="With --assume-applied: a value the call's lost answer would have captured."),
    accept_plan_change: bool = ACCEPT,
    plan: Path | None = typer.Option(None, "--plan", help="Plan file, if it moved."),
    auto_approve: bool = AUTO_APPROVE,
    output: Output = OUTPUT,
    state: str | None = STATE,
    state_dir: str | None = STATE_DIR,
    lock_timeout: str = LOCK_TIMEOUT,
) -> None:
    """Continue a paused, interrupted or baking rollout from its journal."""
    from rollout_cli import operations

    captures = _name_values("--capture", capture)
    ctx = context(cli, output, lock_timeout)
    interruptible(ctx, lambda: operations.resume(ctx, rollout, follow, assume_applied, resend,
                                                 accept_plan_change, plan, auto_approve,
                                                 captures), output,
                  rollout, resume_options(follow, auto_approve))


def _name_values(option: str, values: list[str]) -> dict[str, str]:
    from rollout_cli.errors import UsageError

    pairs = {}
    for value in values:
        name, equals, text = value.partition("=")
        if not equals or not name.strip():
            raise UsageError(f"{option} takes NAME=VALUE, got {value!r}")
        pairs[name.strip()] = text
    return pairs

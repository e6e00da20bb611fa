"""`rollout start` and `rollout run`: create a rollout of a plan and drive it."""

from __future__ import annotations

from pathlib import Path

import typer

from rollout_cli.cli.options import (
    AUTO_APPROVE,
    FOLLOW,
    LOCK_TIMEOUT,
    OUTPUT,
    STATE,
    STATE_DIR,
    Output,
    context,
)
from rollout_cli.cli.running import interruptible, live, resume_options

PLAN = typer.Argument(..., metavar="PLAN", help="The plan file.", show_default=False)


def start(
    cli: typer.Context,
    plan: Path = PLAN,
    follow: bool = FOLLOW,
    output: Output = OUTPUT,
    state: str | None = STATE,
    state_dir: str | None = STATE_DIR,
    lock_timeout: str = LOCK_TIMEOUT,
) -> None:
    """Start a rollout: run until it must wait (bake, gate, pause), then exit 3.

    The rollout id is printed; `--follow` keeps going until the rollout ends. Only one
    rollout of a plan may be active at a time.
    """
    from rollout_cli import operations

    ctx = context(cli, output, lock_timeout)

    def started() -> operations.Result:
        return operations.start(ctx, plan, follow)

    interruptible(ctx, live(ctx, plan, output, started) if follow else started, output,
                  resume=resume_options(follow))


def run(
    cli: typer.Context,
    plan: Path = PLAN,
    auto_approve: bool = AUTO_APPROVE,
    output: Output = OUTPUT,
    state: str | None = STATE,
    state_dir: str | None = STATE_DIR,
    lock_timeout: str = LOCK_TIMEOUT,
) -> None:
    """Start a rollout and follow it to the end (exit 0 succeeded, 1 rolled back).

    Manual gates wait for `rollout advance` from another terminal unless --auto-approve.
    """
    from rollout_cli import operations

    ctx = context(cli, output, lock_timeout)
    interruptible(ctx, live(ctx, plan, output,
                            lambda: operations.start(ctx, plan, True, auto_approve)),
                  output, resume=resume_options(True, auto_approve))

"""`rollout list` and `rollout history`: what is in the store, and one rollout's journal."""

from __future__ import annotations

import typer

from rollout_cli.cli.options import OUTPUT, ROLLOUT, STATE, STATE_DIR, Output, context


def list_(
    cli: typer.Context,
    output: Output = OUTPUT,
    state: str | None = STATE,
    state_dir: str | None = STATE_DIR,
) -> None:
    """Every rollout in the state directory, oldest first, with its phase."""
    from rollout_cli import operations
    from rollout_cli.render.rollout_view import print_list

    print_list(operations.list_rollouts(context(cli, output)), output.value)


def history(
    cli: typer.Context,
    rollout: str | None = ROLLOUT,
    output: Output = OUTPUT,
    state: str | None = STATE,
    state_dir: str | None = STATE_DIR,
) -> None:
    """A rollout's journal: every event, call and decision, in order."""
    from rollout_cli import operations
    from rollout_cli.render.rollout_view import print_history

    meta, events = operations.history(context(cli, output), rollout)
    print_history(meta, events, output.value)

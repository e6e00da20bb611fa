"""`rollout unlock`: release a lock whose holder is gone."""

from __future__ import annotations

import typer

from rollout_cli.cli.options import STATE, STATE_DIR, context


def unlock(
    cli: typer.Context,
    lock_id: str = typer.Argument(..., metavar="LOCK_ID",
                                  help="The ID from the lock record, or a unique prefix."),
    state: str | None = STATE,
    state_dir: str | None = STATE_DIR,
) -> None:
    """Release a lock left by a process that is gone (check it is gone first)."""
    from rollout_cli import operations

    record = operations.unlock(context(cli), lock_id)
    typer.echo(f"released lock {record.get('id', lock_id)} ({record.get('operation')} by "
               f"{record.get('who')})")

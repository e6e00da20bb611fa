"""`rollout repair`: move a journal's cut-short last line, left by a crash, to a side file."""

from __future__ import annotations

import sys

import typer

from rollout_cli.cli.options import ROLLOUT, STATE, STATE_DIR, context


def repair(
    cli: typer.Context,
    rollout: str | None = ROLLOUT,
    yes: bool = typer.Option(False, "--yes", "-y",
                             help="Do not ask for confirmation (needed without a terminal)."),
    state: str | None = STATE,
    state_dir: str | None = STATE_DIR,
) -> None:
    """Repair a rollout's journal whose last line a crash cut short.

    Holding the rollout's lock, moves that line to journal.jsonl.corrupt-<time> beside the
    journal (nothing is deleted) and keeps every line before it; `rollout resume` then
    continues. Exit 0 when repaired or when there was nothing to repair. Damage before the
    last line is not what a crash leaves: it is reported (exit 2) and nothing is changed.
    """
    from rollout_cli import operations
    from rollout_cli.errors import UsageError

    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("repair needs --yes when there is no terminal to confirm on")
        target = rollout or "the active rollout"
        if not typer.confirm(f"Move the cut-short last line of {target}'s journal aside?"):
            raise typer.Exit(2)
    found, done = operations.repair(context(cli), rollout)
    if done is None:
        typer.echo(f"nothing to repair: the journal of {found.id} ends with a whole event")
        return
    typer.echo(f"moved line {done.line} of {done.journal} ({done.size} bytes) to "
               f"{done.side_file}; `rollout resume {found.id}` continues")


"""`rollout state copy FROM TO`: move rollouts between stores (a directory, a database)."""

from __future__ import annotations

import typer

state = typer.Typer(add_completion=False, rich_markup_mode=None, no_args_is_help=True,
                    help="Rollout state itself: copy rollouts between stores.")


@state.callback()
def _group() -> None:
    """Rollout state itself: copy rollouts between stores."""


@state.command("copy")
def copy(
    source: str = typer.Argument(..., metavar="FROM",
                                 help="The store to copy from: a directory or a URL."),
    target: str = typer.Argument(..., metavar="TO",
                                 help="The store to copy to: a directory or a URL."),
    rollout_ids: list[str] = typer.Option([], "--rollout", metavar="ID",
                                          help="Copy only this rollout (repeatable)."),
) -> None:
    """Copy rollouts (metadata, journal, snapshot, active claim) from FROM to TO; TO must
    not have them yet. FROM keeps its copy."""
    from rollout_cli.redact import Redactor, redact_url
    from rollout_cli.store.copy import copy_rollouts
    from rollout_cli.store.location import open_store

    shown_from, shown_to = (redact_url(text, Redactor()) if "://" in text else text
                            for text in (source, target))
    done = copy_rollouts(open_store(source, given_as="FROM"), open_store(target, given_as="TO"),
                         rollout_ids, target_name=shown_to)
    active = f", {len(done.claims)} active" if done.claims else ""
    typer.echo(f"copied {len(done.rollouts)} rollout{'s' if len(done.rollouts) != 1 else ''}"
               f" ({done.events} events{active}) from {shown_from} to {shown_to}")
    for rollout_id in done.rollouts:
        typer.echo(f"  {rollout_id}")

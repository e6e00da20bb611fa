"""Options that several commands share, declared once, and the Context they build."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rollout_cli.operations import Context
    from rollout_cli.store.protocol import Store


class Output(StrEnum):
    text = "text"
    json = "json"
    jsonl = "jsonl"


OUTPUT = typer.Option(Output.text, "--output", "-o",
                      help="text for people; json for machines; jsonl streams every event "
                           "as one JSON line (run, start, resume, advance, status --watch, "
                           "demo; elsewhere the same as json).")
# Given before the command (`rollout --state DIR status`) or after it; state_flags reads
# both places. --state-dir is its older name, kept for the scripts that use it.
STATE = typer.Option(None, "--state", metavar="LOCATION",
                     help="Where rollout state lives: a directory or a postgresql:// URL "
                          "[default: $ROLLOUT_STATE, else ./.rollout].")
STATE_DIR = typer.Option(None, "--state-dir", hidden=True)
LOCK_TIMEOUT = typer.Option("0s", "--lock-timeout",
                            help="Wait this long for another process's lock (e.g. 30s).")
ROLLOUT = typer.Argument(None, metavar="[ROLLOUT]",
                         help="Rollout id or unique prefix; optional when one is active.")
FOLLOW = typer.Option(False, "--follow", "-f", help="Keep running until the rollout ends.")
ACCEPT = typer.Option(False, "--accept-plan-change",
                      help="Continue even though the plan file changed since the start.")
AUTO_APPROVE = typer.Option(False, "--auto-approve",
                            help="Open manual gates automatically (CI).")


def state_flags(cli: typer.Context) -> list[tuple[str, str | None]]:
    """The --state and --state-dir given to the root command and to this one (a command
    declares STATE and STATE_DIR for these, and hands its typer.Context here)."""
    return [(option, level.params.get(name)) for level in (cli.find_root(), cli)
            for option, name in (("--state", "state"), ("--state-dir", "state_dir"))]


def state_store(cli: typer.Context) -> Store:
    """The store the state options name, else the environment, else ./.rollout."""
    from rollout_cli.store.location import choose, open_store

    found = choose(state_flags(cli))
    return open_store(*found) if found else open_store()


def context(cli: typer.Context, output: Output = Output.text,
            lock_timeout: str = "0s") -> Context:
    """The operations' Context: the store the command's state options name (see
    ``state_store``), the lock timeout, and where events are shown (plain lines or JSON
    lines; nothing on stdout with --output json)."""
    from rollout_cli.errors import UsageError
    from rollout_cli.operations import Context
    from rollout_cli.plan.durations import parse_duration
    from rollout_cli.render.rollout_view import EventPrinter, print_lock_wait, print_watching

    try:
        timeout = parse_duration(lock_timeout)
    except ValueError as exc:
        raise UsageError(f"--lock-timeout: {exc}") from None
    return Context(state_store(cli), timeout,
                   on_event=EventPrinter(quiet=output is Output.json,
                                         jsonl=output is Output.jsonl),
                   on_lock_wait=print_lock_wait, on_watch=print_watching)

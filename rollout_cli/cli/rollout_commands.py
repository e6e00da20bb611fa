"""Commands that run and steer rollouts: start, run, advance, status, pause, resume,
rollback, list, history, unlock."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import typer

from rollout_cli.cli.plan_commands import OUTPUT, Output

STATE_DIR = typer.Option(None, "--state-dir", envvar="ROLLOUT_STATE_DIR",
                         help="Where rollout state lives [default: ./.rollout].")
LOCK_TIMEOUT = typer.Option("0s", "--lock-timeout",
                            help="Wait this long for another process's lock (e.g. 30s).")
ROLLOUT = typer.Argument(None, metavar="[ROLLOUT]",
                         help="Rollout id or unique prefix; optional when one is active.")
FOLLOW = typer.Option(False, "--follow", "-f", help="Keep running until the rollout ends.")
ACCEPT = typer.Option(False, "--accept-plan-change",
                      help="Continue even though the plan file changed since the start.")
AUTO_APPROVE = typer.Option(False, "--auto-approve",
                            help="Open manual gates automatically (CI).")


def _context(state_dir: str | None, lock_timeout: str, output: Output, quiet: bool = False):  # type: ignore[no-untyped-def]
    from rollout_cli.errors import UsageError
    from rollout_cli.operations import Context
    from rollout_cli.plan.durations import parse_duration
    from rollout_cli.render.rollout_view import EventPrinter, print_lock_wait

    try:
        timeout = parse_duration(lock_timeout)
    except ValueError as exc:
        raise UsageError(f"--lock-timeout: {exc}") from None
    return Context(state_store(state_dir), timeout,
                   on_event=EventPrinter(quiet=quiet or output is Output.json,
                                         jsonl=output is Output.jsonl),
                   on_lock_wait=print_lock_wait)


def state_store(state_dir: str | None):  # type: ignore[no-untyped-def]
    """The store the state options (or the environment) name."""
    from rollout_cli.store.location import choose, open_store

    found = choose([("--state-dir", state_dir)])
    return open_store(*found) if found else open_store()


def _live(ctx: Any, plan: Path, output: Output, run: Any) -> Any:
    """On a terminal, draw the live view while ``run`` works; elsewhere plain lines."""
    from rollout_cli.render.console import stdout

    if output is not Output.text or not stdout().is_terminal:
        return run
    from rollout_cli.plan import load_plan
    from rollout_cli.render.live_view import LiveView

    view = LiveView(load_plan(plan, ctx.env).plan, stdout())
    ctx.on_event = view

    def watched() -> Any:
        with view:
            return run()

    return watched


def _finish(result: Any, output: Output, resume: str = "") -> None:
    from rollout_cli.render.rollout_view import print_result

    print_result(result, output.value, resume)
    raise typer.Exit(result.exit_code)


class _Terminated(KeyboardInterrupt):
    pass


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


class _Watched:
    """Passes events on to ``sink``, remembering the id of the rollout they came from."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self.rollout_id: str | None = None

    def __call__(self, event: dict[str, Any], state: Any) -> None:
        self.rollout_id = state.id
        self.sink(event, state)


def _interruptible(ctx: Any, run: Any, output: Output, rollout: str | None = None,
                   resume: str = "") -> None:
    """Ctrl-C or SIGTERM: journal a note and leave the rollout resumable, no rollback; the
    result still ends the output, interrupted, with exit 130 (Ctrl-C) or 143 (SIGTERM).

    ``rollout``: the one named on the command line; ``resume``: the options that make
    `rollout resume` carry on as the interrupted command did.
    """
    from rollout_cli.operations import note_interrupted

    watched = ctx.on_event = _Watched(ctx.on_event)
    # Restored afterwards: a program (or test) that runs commands in-process keeps its own.
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result = run()
    except KeyboardInterrupt as stop:
        signal.signal(signal.SIGTERM, previous)   # a second SIGTERM ends it for good
        name = "SIGTERM" if isinstance(stop, _Terminated) else "SIGINT"
        result, note = note_interrupted(ctx, watched.rollout_id or rollout, name)
        if note is not None and output is not Output.text:
            watched.sink(note, result.state)      # the stream's last event
        _finish(result, output, resume)
    finally:
        signal.signal(signal.SIGTERM, previous)
    _finish(result, output)


def start(
    plan: Path = typer.Argument(..., metavar="PLAN", help="The plan file.", show_default=False),
    follow: bool = FOLLOW,
    output: Output = OUTPUT,
    state_dir: str | None = STATE_DIR,
    lock_timeout: str = LOCK_TIMEOUT,
) -> None:
    """Start a rollout: run until it must wait (bake, gate, pause), then exit 3.

    The rollout id is printed; `--follow` keeps going until the rollout ends. Only one
    rollout of a plan may be active at a time.
    """
    from rollout_cli import operations

    ctx = _context(state_dir, lock_timeout, output)
    run = _live(ctx, plan, output, lambda: operations.start(ctx, plan, follow)) if follow \
        else (lambda: operations.start(ctx, plan, follow))
    _interruptible(ctx, run, output, resume=_resume_options(follow))


def run(
    plan: Path = typer.Argument(..., metavar="PLAN", help="The plan file.", show_default=False),
    auto_approve: bool = AUTO_APPROVE,
    output: Output = OUTPUT,
    state_dir: str | None = STATE_DIR,
    lock_timeout: str = LOCK_TIMEOUT,
) -> None:
    """Start a rollout and follow it to the end (exit 0 succeeded, 1 rolled back).

    Manual gates wait for `rollout advance` from another terminal unless --auto-approve.
    """
    from rollout_cli import operations

    ctx = _context(state_dir, lock_timeout, output)
    _interruptible(ctx, _live(ctx, plan, output,
                              lambda: operations.start(ctx, plan, True, auto_approve)),
                   output, resume=_resume_options(True, auto_approve))


def advance(
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
    state_dir: str | None = STATE_DIR,
    lock_timeout: str = LOCK_TIMEOUT,
) -> None:
    """Open the current gate and continue. Refuses mid-bake unless --force --reason.

    With --stage NAME, only that stage's gate: an advance that arrives after another one
    moved the rollout on does nothing (exit 3).
    """
    from rollout_cli import operations
    from rollout_cli.errors import UsageError

    if force and not reason:
        raise UsageError("--force needs --reason TEXT: it is recorded with who forced it")
    ctx = _context(state_dir, lock_timeout, output)
    _interruptible(ctx, lambda: operations.advance(ctx, rollout, force, reason, full, follow,
                                                   accept_plan_change, stage), output,
                   rollout, _resume_options(follow))


def pause(
    rollout: str | None = ROLLOUT,
    reason: str | None = typer.Option(None, "--reason", help="Why; shown in status."),
    output: Output = OUTPUT,
    state_dir: str | None = STATE_DIR,
    lock_timeout: str = LOCK_TIMEOUT,
) -> None:
    """Pause a rollout: nothing more is sent until `rollout resume` or `advance`."""
    from rollout_cli import operations

    ctx = _context(state_dir, lock_timeout, output)
    _finish(operations.pause(ctx, rollout, reason), output)


def resume(
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
    state_dir: str | None = STATE_DIR,
    lock_timeout: str = LOCK_TIMEOUT,
) -> None:
    """Continue a paused, interrupted or baking rollout from its journal."""
    from rollout_cli import operations

    captures = _name_values("--capture", capture)
    ctx = _context(state_dir, lock_timeout, output)
    _interruptible(ctx, lambda: operations.resume(ctx, rollout, follow, assume_applied, resend,
                                                  accept_plan_change, plan, auto_approve,
                                                  captures), output,
                   rollout, _resume_options(follow, auto_approve))


def _resume_options(follow: bool, auto_approve: bool = False) -> str:
    return " ".join(option for option, used in (("--follow", follow),
                                                 ("--auto-approve", auto_approve)) if used)


def _name_values(option: str, values: list[str]) -> dict[str, str]:
    from rollout_cli.errors import UsageError

    pairs = {}
    for value in values:
        name, equals, text = value.partition("=")
        if not equals or not name.strip():
            raise UsageError(f"{option} takes NAME=VALUE, got {value!r}")
        pairs[name.strip()] = text
    return pairs


def rollback(
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

    ctx = _context(state_dir, lock_timeout, output)
    if not yes:
        from rollout_cli.render.rollout_view import print_rollback_preview

        if not sys.stdin.isatty():
            raise UsageError("rollback needs --yes when there is no terminal to confirm on")
        aside = output is not Output.text    # stdout carries the JSON result
        print_rollback_preview(operations.rollback_preview(ctx, rollout, plan), err=aside)
        if not typer.confirm("Roll back?", err=aside):
            raise typer.Exit(2)
    _interruptible(ctx, lambda: operations.rollback(ctx, rollout, plan, reason, resend,
                                                    assume_applied), output, rollout)


def status(
    rollout: str | None = ROLLOUT,
    watch: bool = typer.Option(False, "--watch", "-w", help="Refresh until the rollout ends."),
    output: Output = OUTPUT,
    state_dir: str | None = STATE_DIR,
) -> None:
    """Where a rollout stands. Exit 0 running or succeeded, 1 rolled back or failed,
    3 waiting on a person, 5 rollback incomplete."""
    import time

    from rollout_cli import operations
    from rollout_cli.render.rollout_view import print_status

    ctx = _context(state_dir, "0s", output)
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


def list_(
    output: Output = OUTPUT,
    state_dir: str | None = STATE_DIR,
) -> None:
    """Every rollout in the state directory, oldest first, with its phase."""
    from rollout_cli import operations
    from rollout_cli.render.rollout_view import print_list

    print_list(operations.list_rollouts(_context(state_dir, "0s", output)), output.value)


def history(
    rollout: str | None = ROLLOUT,
    output: Output = OUTPUT,
    state_dir: str | None = STATE_DIR,
) -> None:
    """A rollout's journal: every event, call and decision, in order."""
    from rollout_cli import operations
    from rollout_cli.render.rollout_view import print_history

    meta, events = operations.history(_context(state_dir, "0s", output), rollout)
    print_history(meta, events, output.value)


def unlock(
    lock_id: str = typer.Argument(..., metavar="LOCK_ID", help="The ID from the lock record."),
    state_dir: str | None = STATE_DIR,
) -> None:
    """Release a lock left by a process that is gone (check it is gone first)."""
    from rollout_cli import operations

    record = operations.unlock(_context(state_dir, "0s", Output.text), lock_id)
    typer.echo(f"released lock {lock_id} ({record.get('operation')} by {record.get('who')})")


def register(app: typer.Typer) -> None:
    for command in (start, run, advance, status, pause, resume, rollback, history, unlock):
        app.command()(command)
    app.command("list")(list_)


__all__ = ["register"]

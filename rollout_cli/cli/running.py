"""How a command that runs a rollout shows it and stops: the live view on a terminal, the
result last, and Ctrl-C or SIGTERM leaving the rollout resumable."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import typer

from rollout_cli.cli.options import Output


def live(ctx: Any, plan: Path, output: Output, run: Any) -> Any:
    """On a terminal, draw the live view while ``run`` works; elsewhere plain lines."""
    from rollout_cli.render.console import stdout

    if output is not Output.text or not stdout().is_terminal:
        return run
    from rollout_cli.plan import load_plan
    from rollout_cli.render.live_view import LiveView

    view = LiveView(load_plan(plan, ctx.env).plan, stdout())
    ctx.on_event = view

    def watched() -> Any:
        return view.run(run)

    return watched


def finish(result: Any, output: Output, resume: str = "") -> None:
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

    def __call__(self, event: Any, state: Any) -> None:
        self.rollout_id = state.id
        self.sink(event, state)


def interruptible(ctx: Any, run: Any, output: Output, rollout: str | None = None,
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
        finish(result, output, resume)
    finally:
        signal.signal(signal.SIGTERM, previous)
    finish(result, output)


def resume_options(follow: bool, auto_approve: bool = False) -> str:
    """The options that make `rollout resume` carry on as this command was running."""
    return " ".join(option for option, used in (("--follow", follow),
                                                 ("--auto-approve", auto_approve)) if used)

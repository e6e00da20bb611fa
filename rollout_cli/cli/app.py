"""The `rollout` command. Command modules stay light: heavy imports live inside commands."""

from __future__ import annotations

import os
import sys

import typer

from rollout_cli import __version__
from rollout_cli.cli import (
    demo_command,
    plan_commands,
    repair_command,
    report_command,
    rollout_commands,
    sandbox_command,
    simulate_command,
)
from rollout_cli.errors import RolloutError

# "\b" keeps click from rewrapping the lines into one paragraph.
EXIT_CODES = """\b
Exit codes: 0 done/healthy, 1 failed or rolled back, 2 invalid input or damaged state,
3 waiting on a person, 4 locked, 5 unreachable or rollback incomplete,
6 state could not be written (disk full...): the rollout may have acted,
  see `rollout history`, fix the disk, then `rollout resume`."""

app = typer.Typer(
    name="rollout",
    help="Progressive rollouts for any HTTP-controlled service, driven by a YAML plan.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rollout {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    no_color: bool = typer.Option(False, "--no-color", help="No colours (NO_COLOR works too)."),
) -> None:
    """Progressive rollouts for any HTTP-controlled service, driven by a YAML plan."""
    if no_color:
        os.environ["NO_COLOR"] = "1"


plan_commands.register(app)
rollout_commands.register(app)
simulate_command.register(app)
demo_command.register(app)
sandbox_command.register(app)
report_command.register(app)
repair_command.register(app)


def main() -> None:
    try:
        app(prog_name="rollout")
    except RolloutError as exc:
        from rollout_cli.render.console import print_error

        print_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("ROLLOUT_DEBUG"):
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (ROLLOUT_DEBUG=1 shows the "
              "traceback; the rollout's journal is intact and `rollout resume` continues)",
              file=sys.stderr)
        sys.exit(1)

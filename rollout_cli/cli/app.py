"""The `rollout` command: the root options, and the table of commands, each imported and
built when it is asked for, so that `rollout --version` or `rollout status` builds no other
command. Command modules stay light too: heavy imports live inside the commands."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import typer
from typer.core import TyperGroup

from rollout_cli import __version__
from rollout_cli.cli.options import STATE, STATE_DIR
from rollout_cli.errors import RolloutError

# name -> "module:function" under rollout_cli.cli, in the order `rollout --help` lists them.
COMMANDS = {
    "validate": "plan_commands:validate",
    "plan": "plan_commands:plan",
    "schema": "plan_commands:schema",
    "start": "start_commands:start",
    "run": "start_commands:run",
    "advance": "steer_commands:advance",
    "status": "status_command:status",
    "pause": "steer_commands:pause",
    "resume": "steer_commands:resume",
    "rollback": "rollback_command:rollback",
    "history": "history_commands:history",
    "unlock": "unlock_command:unlock",
    "list": "history_commands:list_",
    "simulate": "simulate_command:simulate",
    "demo": "demo_command:demo",
    "sandbox": "sandbox_command:sandbox",
    "report": "report_command:report",
    "repair": "repair_command:repair",
    "agent": "agent_command:agent",
    "state": "state_commands:state",
}

# "\b" keeps click from rewrapping the lines into one paragraph.
EXIT_CODES = """\b
Exit codes: 0 done/healthy, 1 failed or rolled back, 2 invalid input or damaged state,
3 waiting on a person, 4 locked, 5 unreachable or rollback incomplete,
6 state could not be written (disk full...): the rollout may have acted,
  see `rollout history`, fix the disk, then `rollout resume`."""

class _Commands(Mapping[str, Any]):
    """COMMANDS as click commands, each built on first use."""

    def __init__(self) -> None:
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            module, _, function = COMMANDS[name].partition(":")
            found = getattr(importlib.import_module(f"rollout_cli.cli.{module}"), function)
            if isinstance(found, typer.Typer):    # a group of subcommands (`state copy`)
                self._built[name] = typer.main.get_group(found)
                self._built[name].name = name
                return self._built[name]
            one = typer.Typer(add_completion=False, rich_markup_mode=None)
            one.command(name)(found)
            self._built[name] = typer.main.get_command(one)
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)


class _LazyGroup(TyperGroup):
    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Commands()  # type: ignore[assignment]

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)


app = typer.Typer(
    name="rollout",
    cls=_LazyGroup,
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
    state: str | None = STATE,
    state_dir: str | None = STATE_DIR,
) -> None:
    """Progressive rollouts for any HTTP-controlled service, driven by a YAML plan."""
    if no_color:
        os.environ["NO_COLOR"] = "1"


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

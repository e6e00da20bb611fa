"""The command table: every command in it is listed, has its help, and runs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rollout_cli.cli.app import COMMANDS
from tests.conftest import CliResult


def test_help_lists_every_command_in_the_tables_order(rollout: Callable[..., CliResult]):
    shown = rollout("--help")

    assert shown.code == 0
    table = shown.out.split("Commands:\n")[1].split("\n\n")[0]
    listed = [line.split()[0] for line in table.splitlines()]
    assert listed == list(COMMANDS)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_has_its_help(rollout: Callable[..., CliResult], name: str):
    shown = rollout(name, "--help")

    assert shown.code == 0, shown.err
    assert shown.out.startswith(f"Usage: rollout {name} [OPTIONS]")


def test_a_mistyped_command_is_refused_with_a_suggestion(rollout: Callable[..., CliResult]):
    refused = rollout("statu")

    assert refused.code == 2
    assert "No such command 'statu'. Did you mean 'status', 'state', 'start'?" in refused.err

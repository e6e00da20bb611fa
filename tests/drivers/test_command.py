"""Local commands, run for real with short timeouts where the timeout is what is tested."""

from __future__ import annotations

import os
import select
import sys
import time
from pathlib import Path

import pytest

from rollout_cli.drivers.command import (
    TAIL_BYTES,
    CommandSpec,
    describe_command,
    run_command,
)
from rollout_cli.redact import Redactor

TOKEN = "cmd-s3cr3t-4411"


def is_gone(pid: int, within: float = 2.0) -> bool:
    """True once ``pid`` has exited (a zombie counts: no reaper may come in a container).

    A pidfd turns readable on exit, so this waits for the kernel's event instead of
    polling: SIGKILL is delivered asynchronously and the pipes close a moment before
    the process is marked dead.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([pidfd], [], [], within)
    finally:
        os.close(pidfd)
    return bool(readable)


def test_argv_runs_and_captures_output() -> None:
    outcome = run_command(CommandSpec(argv=["sh", "-c", "echo out; echo err >&2"]), Redactor())

    assert (outcome.exit_code, outcome.error, outcome.timed_out) == (0, None, False)
    assert (outcome.stdout, outcome.stderr) == ("out\n", "err\n")
    assert outcome.ok and outcome.elapsed > 0


def test_exit_code_mismatch_is_an_error() -> None:
    outcome = run_command(CommandSpec(argv=["sh", "-c", "exit 3"]), Redactor())

    assert outcome.exit_code == 3
    assert outcome.error == "exit code 3, expected 0"
    assert not outcome.ok


def test_expected_nonzero_exit_is_ok() -> None:
    outcome = run_command(CommandSpec(argv=["sh", "-c", "exit 3"], expect_exit=3), Redactor())

    assert (outcome.exit_code, outcome.error) == (3, None)


def test_timeout_kills_the_whole_process_group() -> None:
    spec = CommandSpec(command="sh -c 'sleep 30 & echo $!; sleep 30'", timeout=0.3)

    started = time.monotonic()
    outcome = run_command(spec, Redactor())

    assert time.monotonic() - started < 3.0
    assert outcome.timed_out
    assert outcome.error == "timed out after 0.3s; its process group was killed"
    grandchild = int(outcome.stdout.split()[0])
    assert is_gone(grandchild)


def test_timeout_kills_children_that_ignore_sigterm() -> None:
    script = "trap '' TERM; sleep 30 & echo $!; wait"
    outcome = run_command(CommandSpec(argv=["sh", "-c", script], timeout=0.3), Redactor())

    assert outcome.timed_out
    assert is_gone(int(outcome.stdout.split()[0]))


def test_missing_executable_is_an_outcome() -> None:
    outcome = run_command(CommandSpec(command="npm-not-installed-here run build"), Redactor())

    assert outcome.exit_code is None
    assert outcome.error == "command not found: npm-not-installed-here"


def test_missing_command_under_a_shell_gets_a_hint() -> None:
    spec = CommandSpec(command="npm-not-installed-here run build", shell=True)

    outcome = run_command(spec, Redactor())

    assert outcome.exit_code == 127
    assert outcome.error == "exit code 127, expected 0 (command not found?)"


def test_missing_working_directory_is_an_outcome(tmp_path: Path) -> None:
    missing = str(tmp_path / "gone")

    outcome = run_command(CommandSpec(argv=["true"], cwd=missing), Redactor())

    assert outcome.error == f"working directory not found: {missing}"


def test_not_executable_is_an_outcome(tmp_path: Path) -> None:
    script = tmp_path / "deploy.sh"
    script.write_text("#!/bin/sh\necho hi\n")

    outcome = run_command(CommandSpec(argv=[str(script)]), Redactor())

    assert outcome.error == f"permission denied: {script}"


def test_without_shell_a_semicolon_is_just_an_argument(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    outcome = run_command(CommandSpec(command=f"echo hello; touch {marker}"), Redactor())

    assert outcome.stdout == f"hello; touch {marker}\n"
    assert not marker.exists()


def test_with_shell_a_semicolon_separates_commands(tmp_path: Path) -> None:
    marker = tmp_path / "made"

    run_command(CommandSpec(command=f"echo hello; touch {marker}", shell=True), Redactor())

    assert marker.exists()


def test_unbalanced_quotes_are_an_outcome() -> None:
    outcome = run_command(CommandSpec(command="echo 'oops"), Redactor())

    assert outcome.error is not None and outcome.error.startswith("cannot parse command: ")


def test_cwd_and_extra_env_are_applied(tmp_path: Path) -> None:
    spec = CommandSpec(
        argv=[sys.executable, "-c", "import os; print(os.getcwd(), os.environ['STAGE'])"],
        cwd=str(tmp_path),
        env={"STAGE": "canary-25"},
    )

    outcome = run_command(spec, Redactor())

    assert outcome.stdout.split() == [os.path.realpath(tmp_path), "canary-25"]


def test_output_tails_are_bounded() -> None:
    script = "import sys; sys.stdout.write('a' * 10000 + 'END')"

    outcome = run_command(CommandSpec(argv=[sys.executable, "-c", script]), Redactor())

    assert len(outcome.stdout.encode()) == TAIL_BYTES
    assert outcome.stdout.endswith("END")


def test_output_is_redacted_including_secret_env_values() -> None:
    spec = CommandSpec(
        command='echo "$DEPLOY_TOKEN and ' + TOKEN + '" >&2; exit 1',
        shell=True,
        env={"DEPLOY_TOKEN": "env-only-secret-99"},
    )

    outcome = run_command(spec, Redactor([TOKEN]))

    assert outcome.stderr == "*** and ***\n"
    described = describe_command(spec, Redactor([TOKEN]))
    assert described == 'sh -c echo "$DEPLOY_TOKEN and ***" >&2; exit 1'


def test_describe_command() -> None:
    assert describe_command(CommandSpec(argv=["npm", "run", "build"]), Redactor()) == (
        "npm run build"
    )
    assert describe_command(CommandSpec(command="a && b", shell=True), Redactor()) == (
        "sh -c a && b"
    )


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"argv": ["a"], "command": "a"}, {"argv": []}, {"argv": ["a"], "timeout": 0}],
)
def test_invalid_specs_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        CommandSpec(**kwargs)  # type: ignore[arg-type]

"""Local commands: no shell unless asked for, a timeout that takes the children down too.

Each command runs in a new session, so it leads its own process group; on timeout the
whole group gets SIGTERM, then SIGKILL after a short grace period. Killing only the
direct child would leave ``npm run build``'s node processes (or a ``sleep`` forked by
``sh``) running and holding our output pipes open.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rollout_cli.redact import Redactor, is_secret_name

TAIL_BYTES = 4 * 1024
KILL_GRACE = 1.0  # seconds between SIGTERM and SIGKILL
DRAIN_TIMEOUT = 1.0  # how long to wait for output once the group is dead
COMMAND_NOT_FOUND = 127  # what a shell answers for a missing program


@dataclass(frozen=True)
class CommandSpec:
    """A local command as ``argv``, or as a ``command`` string (shlex-split, or given to
    ``/bin/sh`` only when ``shell`` is true). ``env`` adds to the inherited environment."""

    argv: list[str] | None = None
    command: str | None = None
    shell: bool = False
    timeout: float = 600.0
    expect_exit: int = 0
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.argv is None) == (self.command is None):
            raise ValueError("a command takes exactly one of argv or command")
        if self.argv is not None and not self.argv:
            raise ValueError("argv must not be empty")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")

    def args(self) -> list[str] | str:
        """What ``subprocess`` gets: a string for the shell, a list otherwise."""
        if self.shell:
            return self.command if self.command is not None else shlex.join(self.argv or [])
        return list(self.argv) if self.argv is not None else shlex.split(self.command or "")


@dataclass
class CommandOutcome:
    """What a command did; ``stdout``/``stderr`` are the redacted last 4 KiB."""

    exit_code: int | None
    stdout: str
    stderr: str
    elapsed: float
    timed_out: bool
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


def describe_command(spec: CommandSpec, redactor: Redactor) -> str:
    """One redacted line for logs and dry runs."""
    args = spec.args()
    text = args if isinstance(args, str) else shlex.join(args)
    return _local_redactor(spec, redactor).text(f"{'sh -c ' if spec.shell else ''}{text}")


def run_command(
    spec: CommandSpec, redactor: Redactor, clock: Callable[[], float] = time.monotonic
) -> CommandOutcome:
    """Run to completion or timeout; failures to start become outcomes, not exceptions."""
    redact = _local_redactor(spec, redactor)
    started = clock()
    try:
        args = spec.args()
    except ValueError as exc:  # unbalanced quotes in a command string
        return _not_started(f"cannot parse command: {exc}", started, clock)
    if not args:
        return _not_started("empty command", started, clock)
    try:
        process = subprocess.Popen(
            args,
            shell=spec.shell,
            cwd=spec.cwd,
            env={**os.environ, **spec.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        return _not_started(redact.text(_start_error(exc, spec, args)), started, clock)
    stdout, stderr, timed_out = _communicate(process, spec.timeout)
    exit_code = process.returncode
    return CommandOutcome(
        exit_code=exit_code,
        stdout=redact.text(_tail(stdout)),
        stderr=redact.text(_tail(stderr)),
        elapsed=clock() - started,
        timed_out=timed_out,
        error=_exit_error(exit_code, spec, timed_out),
    )


def _communicate(process: subprocess.Popen[bytes], timeout: float) -> tuple[bytes, bytes, bool]:
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        return stdout, stderr, False
    except subprocess.TimeoutExpired:
        _kill_group(process)
    try:
        stdout, stderr = process.communicate(timeout=DRAIN_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        # Something escaped the group (setsid) and still holds a pipe: keep what we have.
        stdout, stderr = exc.stdout or b"", exc.stderr or b""
        process.kill()
        process.wait()
    return stdout, stderr, True


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    _signal_group(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=KILL_GRACE)
    # Even when the leader went quietly, members that ignore SIGTERM must not survive it.
    _signal_group(process.pid, signal.SIGKILL)


def _signal_group(group: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # every member is already gone
        os.killpg(group, sig)


def _exit_error(exit_code: int | None, spec: CommandSpec, timed_out: bool) -> str | None:
    if timed_out:
        return f"timed out after {spec.timeout:g}s; its process group was killed"
    if exit_code == spec.expect_exit:
        return None
    if exit_code is not None and exit_code < 0:
        return f"killed by {_signal_name(-exit_code)}, expected exit code {spec.expect_exit}"
    hint = " (command not found?)" if spec.shell and exit_code == COMMAND_NOT_FOUND else ""
    return f"exit code {exit_code}, expected {spec.expect_exit}{hint}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _start_error(exc: OSError, spec: CommandSpec, args: list[str] | str) -> str:
    program = args if isinstance(args, str) else args[0]
    if spec.cwd is not None and not os.path.isdir(spec.cwd):
        return f"working directory not found: {spec.cwd}"
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {program}"
    if isinstance(exc, PermissionError):
        return f"permission denied: {program}"
    return f"cannot start {program}: {exc.strerror or exc}"


def _not_started(error: str, started: float, clock: Callable[[], float]) -> CommandOutcome:
    return CommandOutcome(None, "", "", clock() - started, timed_out=False, error=error)


def _tail(output: bytes) -> str:
    return output[-TAIL_BYTES:].decode(errors="replace")


def _local_redactor(spec: CommandSpec, redactor: Redactor) -> _CommandRedactor:
    return _CommandRedactor(redactor, [v for k, v in spec.env.items() if is_secret_name(k)])


class _CommandRedactor:
    """The shared redactor plus secrets handed to this command through ``env``."""

    def __init__(self, shared: Redactor, secrets: list[str]):
        self._shared = shared
        self._own = Redactor(secrets)

    def text(self, value: str) -> str:
        return self._own.text(self._shared.text(value))

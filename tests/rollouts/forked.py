"""Running `rollout` as separate processes without paying for a fresh interpreter each time.

A new interpreter spends most of a second importing rollout (httpx, typer, rich, PyYAML)
before it does anything, and the crash test starts ~90 rollout processes. A ``Zygote``
is one helper process (``python -m tests.rollouts.forked``) that imports rollout once,
runs no threads, and forks a child for every command it is sent. Each child is a real
process of its own (own pid and lock record; killpoints.py's SIGKILL gives returncode
-9) running the entry point of `python -m rollout_cli` with its own argv, environment,
working directory, stdin (/dev/null) and output files: only the start-up cost is gone.

Protocol, one JSON object a line: the test writes ``{"argv", "env", "cwd", "out", "err"}``
to the zygote's stdin; the zygote answers ``{"pid": N}`` once the child runs, then
``{"code": C}`` when it has ended (``-signal`` when a signal ended it).
"""

from __future__ import annotations

import importlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, CliResult


class Zygote:
    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.rollouts.forked"], cwd=ROOT, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._answers = b""     # read from the pipe's fd, split into lines here

    def run(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path,
            timeout: float = 60.0) -> CliResult:
        """`rollout ARGV...` in a forked child: its exit code and output."""
        name = uuid.uuid4().hex[:8]
        out, err = cwd / f".forked-{name}.out", cwd / f".forked-{name}.err"
        self._send({"argv": list(argv), "env": dict(env), "cwd": str(cwd), "out": str(out),
                    "err": str(err)})
        pid = self._receive(10.0)["pid"]
        try:
            code = self._receive(timeout)["code"]
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
            self._receive(10.0)
            raise AssertionError(f"`rollout {' '.join(argv)}` still ran after {timeout}s\n"
                                 f"{out.read_text()}\n{err.read_text()}") from None
        result = CliResult(code, out.read_text(), err.read_text())
        out.unlink()
        err.unlink()
        return result

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=10)

    def _send(self, request: dict[str, Any]) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()

    def _receive(self, timeout: float) -> dict[str, Any]:
        assert self._process.stdout is not None
        fd = self._process.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._answers:
                if not selector.select(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError
                chunk = os.read(fd, 4096)
                assert chunk, f"the zygote died (exit {self._process.poll()})"
                self._answers += chunk
        line, _, self._answers = self._answers.partition(b"\n")
        return dict(json.loads(line))


# --- the zygote itself ---------------------------------------------------------------

# Imported once, in the zygote, for every child: what `rollout run` and `resume` load
# (httpx imports its transport and rich its emoji table only when first used).
PRELOAD = ("rich.console", "rich._emoji_codes", "httpx", "httpcore", "h11", "anyio", "certifi",
           "encodings.idna",
           "rollout_cli.cli.app", "rollout_cli.cli.start_commands", "rollout_cli.cli.steer_commands",
           "rollout_cli.cli.rollback_command", "rollout_cli.cli.status_command",
           "rollout_cli.drivers.http",
           "rollout_cli.operations", "rollout_cli.plan.loader", "rollout_cli.reconcile.executor",
           "rollout_cli.reconcile.loop", "rollout_cli.render.rollout_view",
           "tests.rollouts.killpoints")


def _child(request: dict[str, Any]) -> int:
    """In the forked child: become `rollout ARGV...`."""
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(request["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    err = os.open(request["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    for fd, target in ((null, 0), (out, 1), (err, 2)):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.argv = ["rollout", *request["argv"]]
    from rollout_cli.cli.app import main
    from tests.rollouts.killpoints import install_from_env

    install_from_env()  # the crash tests' SIGKILL after the Nth state write, when asked

    try:
        main()
        return 0
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)


def _serve() -> None:
    for module in PRELOAD:
        importlib.import_module(module)

    answers = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        answers.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _child(request)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        answers.write(json.dumps({"pid": pid}) + "\n")
        answers.flush()
        _, status = os.waitpid(pid, 0)
        answers.write(json.dumps({"code": os.waitstatus_to_exitcode(status)}) + "\n")
        answers.flush()


if __name__ == "__main__":
    _serve()

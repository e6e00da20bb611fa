"""`rollout sandbox` as a user runs it: a real process serving loopback, stopped by Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import httpx

from tests.conftest import CliResult


def _listening_url(stdout: IO[str], within: float) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        line = stdout.readline()
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if found:
            return found.group(1)
    raise TimeoutError("the sandbox never printed its URL")


def test_the_sandbox_command_serves_until_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "rollout_cli", "sandbox", "--port", "0", "--scenario", "healthy",
         "--time-scale", "600", "--token", "t0ken-value"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        assert process.stdout is not None
        url = _listening_url(process.stdout, within=15.0)
        assert httpx.get(f"{url}/api/brain", params={"mode": "health"}).json()["status"] == "ok"
        auth = {"Authorization": "Bearer t0ken-value"}
        assert httpx.get(f"{url}/api/admin/ab-testing/results").status_code == 401
        assert httpx.get(f"{url}/api/admin/ab-testing/results", headers=auth).status_code == 200
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert out.strip().splitlines()[-1] == "sandbox stopped"
    assert "Traceback" not in err
    assert "t0ken-value" not in out + err


def test_help_names_the_scenarios_and_options(rollout: Callable[..., CliResult]) -> None:
    result = rollout("sandbox", "--help")
    assert result.code == 0
    for word in ("degrade-at-50", "no-traffic", "--time-scale", "--token", "--seed", "/metrics"):
        assert word in result.out


def test_an_invalid_scenario_file_is_a_clear_usage_error(
    rollout: Callable[..., CliResult], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("modern:\n  success_rate: 1.7\n")
    result = rollout("sandbox", "--scenario", str(bad))
    assert result.code == 2
    assert f"{bad}: modern: success_rate must be between 0 and 1, got 1.7" in result.err
    assert "Traceback" not in result.err


def test_an_unknown_scenario_name_lists_the_presets(rollout: Callable[..., CliResult]) -> None:
    result = rollout("sandbox", "--scenario", "sunny")
    assert result.code == 2
    assert "unknown scenario 'sunny'" in result.err and "degrade-at-50" in result.err


def test_a_port_in_use_is_a_usage_error(rollout: Callable[..., CliResult]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = rollout("sandbox", "--port", str(port))
    assert result.code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.err


def test_the_package_imports_its_http_server_only_when_asked() -> None:
    script = (
        "import sys, rollout_cli.sandbox as sandbox\n"
        "assert 'rollout_cli.sandbox.server' not in sys.modules\n"
        "assert 'running_sandbox' in dir(sandbox)\n"
        "from rollout_cli.sandbox import RunningSandbox, SandboxServer, running_sandbox\n"
        "from rollout_cli.sandbox import server\n"
        "assert (RunningSandbox, SandboxServer, running_sandbox) == "
        "(server.RunningSandbox, server.SandboxServer, server.running_sandbox)\n"
        "try:\n"
        "    sandbox.no_such_name\n"
        "except AttributeError:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('no AttributeError')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

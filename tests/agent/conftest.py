"""Fixtures for the agent tests: the sandbox target and the operator of tests/rollouts,
`rollout agent` as a real process on a free loopback port, and a real Alertmanager.

An agent is started with ``--listen 127.0.0.1:0`` and its URL read from the line it
prints once it listens; ``ROLLOUT_LEASE_TTL`` shortens the leases where a test waits for
one to expire.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.rollouts.conftest import (  # noqa: F401  (fixtures, by name)
    Operator,
    Target,
    clean_env,
    derive_plan,
    operator,
    read_until,
    target,
)
from tests.sandbox.conftest import free_port, stop_process

ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
LISTENING = r"listening on (http://127\.0\.0\.1:\d+)"


def agent_plan(path: Path, *, gates: str = "manual", alerts: str | None = None,
               **options: Any) -> Path:
    """The demo plan (derive_plan: 0s bakes, no analysis unless asked) with every gate
    ``gates`` and, if given, ``alerts`` (YAML text) as its `alerts:` section."""
    derive_plan(path, **options)
    text = path.read_text().replace("gate: manual", f"gate: {gates}")
    if alerts is not None:
        text = text[:text.index("\nalerts:")] + "\nalerts:\n" + alerts
    path.write_text(text)
    return path


@dataclass
class Agent:
    process: subprocess.Popen[str]
    url: str
    log: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def drain(self) -> None:
        """Keep reading its stderr (the log), so that a full pipe never blocks it."""
        def read() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.log.append(line)
        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()

    @property
    def text(self) -> str:
        return "".join(self.log)

    def get(self, path: str, **options: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, **options)

    def post(self, path: str, **options: Any) -> httpx.Response:
        return httpx.post(self.url + path, timeout=10, **options)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> tuple[int, str]:
        """Send ``sig``; the exit code and everything it printed on stderr."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"the agent did not stop within {timeout}s:\n{self.text}"
                                 ) from None
        if self.reader is not None:
            self.reader.join(timeout=10)
        return self.process.returncode, self.text


@pytest.fixture
def start_agent(operator: Operator) -> Iterator[Callable[..., Agent]]:  # noqa: F811
    started: list[Agent] = []

    def start(*args: str, env: Mapping[str, str] | None = None) -> Agent:
        process = subprocess.Popen(
            [sys.executable, "-m", "rollout_cli", "agent", "--listen", "127.0.0.1:0",
             "--state", str(operator.state_dir), *args],
            cwd=operator.cwd, env=operator.env(env), stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        line = read_until(process, LISTENING, timeout=30, stream="stderr")
        found = re.search(LISTENING, line)
        assert found is not None
        agent = Agent(process, found.group(1), [line, getattr(process, "_read_until_stderr", "")])
        agent.drain()
        started.append(agent)
        return agent

    yield start
    for agent in started:
        if agent.process.poll() is None:
            agent.process.kill()
            agent.process.wait()


def wait_for(condition: Callable[[], Any], within: float, what: str,
             every: float = 0.05) -> Any:
    """Poll ``condition`` (a journal or a process's state: another process changes it,
    there is no clock to advance) until it is truthy."""
    deadline = time.monotonic() + within
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {within}s")
        time.sleep(every)


class Exporter:
    """`brain_api_error_ratio` on http://127.0.0.1:PORT/metrics, set by the test (or the
    bench): ``ratio``, with ``labels`` (exposition text such as ``{incident="3"}``)."""

    def __init__(self) -> None:
        self.ratio = 0.0
        self.labels = ""
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = (f"# TYPE brain_api_error_ratio gauge\n"
                        f"brain_api_error_ratio{exporter.labels} {exporter.ratio}\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Alertmanager:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def push(self, labels: Mapping[str, str]) -> None:
        """Fire an alert through Alertmanager's API, as Prometheus does."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        response = httpx.post(f"{self.url}/api/v2/alerts",
                              json=[{"labels": dict(labels), "startsAt": now}], timeout=5)
        assert response.status_code == 200, response.text

    def alerts(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.url}/api/v2/alerts", timeout=5).json())

    def stop(self) -> None:
        stop_process(self.process)


def start_alertmanager(webhook: str, work: Path, token: str | None = None) -> Alertmanager:
    """A real Alertmanager (Debian's prometheus-alertmanager) on a free loopback port,
    its files in ``work``, routing every alert to ``webhook`` with group_wait 1s; the
    caller stops its process."""
    assert Path(ALERTMANAGER).exists(), (
        "Alertmanager is needed: apt-get install prometheus-alertmanager "
        "(scripts/test installs it)")
    auth = (f"        http_config: {{authorization: {{credentials: {token}}}}}\n"
            if token else "")
    config = work / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: agent\n  group_by: [alertname]\n  group_wait: 1s\n"
        "  group_interval: 1s\n  repeat_interval: 1h\n"
        "receivers:\n  - name: agent\n    webhook_configs:\n"
        f"      - url: {webhook}\n        send_resolved: true\n{auth}")
    port = free_port()
    log = work / "alertmanager.log"
    process = subprocess.Popen(
        [ALERTMANAGER, f"--config.file={config}", f"--storage.path={work / 'am'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=log.open("wb"), stderr=subprocess.STDOUT)
    manager = Alertmanager(f"http://127.0.0.1:{port}", process, log)

    def ready() -> bool:
        try:
            return httpx.get(f"{manager.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return process.poll() is not None
    try:
        wait_for(ready, 30, "Alertmanager ready", every=0.1)
        assert process.poll() is None, log.read_text()[-2000:]
    except BaseException:
        manager.stop()
        raise
    return manager


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Callable[..., Alertmanager]]:
    """Starts a real Alertmanager (``start_alertmanager``) in the test's directory."""
    started: list[Alertmanager] = []

    def start(webhook: str, token: str | None = None) -> Alertmanager:
        manager = start_alertmanager(webhook, tmp_path, token)
        started.append(manager)
        return manager

    yield start
    for manager in started:
        manager.stop()

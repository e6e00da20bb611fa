"""Fixtures for the sandbox tests: in-process sandboxes on a virtual clock, live ones on
loopback, and a real Prometheus server.

``start_prometheus`` depends on nothing in this directory so it can move to
tests/conftest.py when other suites need a Prometheus.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from rollout_cli.plan.durations import parse_duration
from rollout_cli.sandbox import (
    SandboxApp,
    Scenario,
    VirtualClock,
    create_sandbox,
    running_sandbox,
    sandbox_client,
)

PROMETHEUS_BINARY = shutil.which("prometheus") or "/usr/bin/prometheus"

# --- Prometheus ----------------------------------------------------------------------


@dataclass
class PrometheusHandle:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        response.raise_for_status()
        return response.json()["data"]["result"]

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL after 10 s; reaped either way."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_prometheus(
    scrape_targets: list[str], tmp_path: Path, *, ready_within: float = 20.0,
    rules: str | None = None, alertmanager: str | None = None,
) -> PrometheusHandle:
    """Start /usr/bin/prometheus on a free loopback port, scraping ``host:port`` targets
    every second, with its data in ``tmp_path``; returns once it reports ready.

    ``rules`` (a rule file's YAML text) is evaluated every second; its alerts go to the
    Alertmanager at ``alertmanager`` (``host:port``)."""
    if not Path(PROMETHEUS_BINARY).exists():
        raise RuntimeError("prometheus is not installed (Debian package prometheus; scripts/test installs it)")
    targets = ", ".join(f'"{t}"' for t in scrape_targets)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: sandbox\n"
        f"    static_configs: [{{targets: [{targets}]}}]\n"
    )
    if rules is not None:
        (tmp_path / "rules.yml").write_text(rules)
        with config.open("a") as text:
            text.write(f"rule_files: [{tmp_path / 'rules.yml'}]\n")
    if alertmanager is not None:
        with config.open("a") as text:
            text.write("alerting:\n  alertmanagers:\n"
                       f"    - static_configs: [{{targets: [\"{alertmanager}\"]}}]\n")
    port = free_port()
    log_path = tmp_path / "prometheus.log"
    process = subprocess.Popen(
        [
            PROMETHEUS_BINARY,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    handle = PrometheusHandle(f"http://127.0.0.1:{port}", process, log_path)
    ready = _watch_log(process, log_path)
    try:
        if not ready.wait(ready_within) or process.poll() is not None:
            raise RuntimeError(f"prometheus not ready within {ready_within}s: "
                               f"{log_path.read_text(errors='replace')[-2000:]}")
    except BaseException:
        handle.stop()
        raise
    return handle


def _watch_log(process: subprocess.Popen[bytes], log_path: Path) -> threading.Event:
    """Copy Prometheus's output to ``log_path``; the event is set once it says it is
    ready to serve (or its output ends): a blocking read, no polling."""
    ready = threading.Event()

    def copy() -> None:
        assert process.stdout is not None
        with log_path.open("wb") as log:
            for line in process.stdout:
                log.write(line)
                log.flush()
                if b"ready to receive web requests" in line:
                    ready.set()
        ready.set()

    threading.Thread(target=copy, daemon=True).start()
    return ready


def wait_until(condition: Callable[[], Any], within: float, what: str,
               next_chance: Callable[[float], object]) -> Any:
    """Check ``condition`` until it returns something truthy, blocking in between on
    ``next_chance(seconds_left)``: something that returns when the answer may have changed,
    such as a sandbox's next scrape. Only for real external processes (Prometheus scrapes
    on its own schedule), where there is no clock to advance."""
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        found = condition()
        if found:
            return found
        next_chance(left)
    raise TimeoutError(f"{what} within {within}s")


def next_scrape(app: SandboxApp) -> Callable[[float], object]:
    """A ``next_chance`` for wait_until: returns once Prometheus scraped ``app`` again."""
    return lambda left: app.wait_for_scrape(app.scrapes, left)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[list[str]], PrometheusHandle]]:
    started: list[PrometheusHandle] = []

    def start(targets: list[str]) -> PrometheusHandle:
        handle = start_prometheus(targets, tmp_path)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()


# --- sandboxes -----------------------------------------------------------------------


@dataclass
class Sim:
    """An in-process sandbox on a virtual clock, and the client talking to it."""

    app: SandboxApp
    client: httpx.Client
    clock: VirtualClock

    def advance(self, duration: str | float) -> None:
        """By ``"10m"``, or by a number of seconds."""
        seconds = parse_duration(duration) if isinstance(duration, str) else duration
        self.clock.advance(seconds)

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.client.post(path, json=body)

    def start_test(self, percentage: float, **fields: Any) -> dict[str, Any]:
        body = {"testId": "brain-api-modern-rollout", "rolloutPercentage": percentage, **fields}
        response = self.post("/api/admin/ab-testing/start", body)
        assert response.status_code == 200, response.text
        return response.json()

    def set_percentage(self, percentage: float) -> httpx.Response:
        return self.post("/api/admin/ab-testing/update", {"rolloutPercentage": percentage})

    def results(self, window: str = "5m") -> dict[str, Any]:
        return self.get("/api/admin/ab-testing/results", window=window)

    def modern(self, window: str = "5m") -> dict[str, Any]:
        return self.results(window)["variants"]["modern"]

    def legacy(self, window: str = "5m") -> dict[str, Any]:
        return self.results(window)["variants"]["legacy"]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def make_sim(clock: VirtualClock) -> Iterator[Callable[..., Sim]]:
    """Build in-process sandboxes: make_sim("error-spike", seed=3, token="t")."""
    with ExitStack() as stack:

        def make(scenario: Scenario | str = "healthy", *, seed: int = 7, **options: Any) -> Sim:
            app = create_sandbox(scenario, seed=seed, clock=clock, **options)
            client = stack.enter_context(sandbox_client(app, timeout=10.0))
            return Sim(app, client, clock)

        yield make


@dataclass
class Live:
    """A sandbox served over real HTTP on loopback, driven by a virtual clock."""

    url: str
    app: SandboxApp
    clock: VirtualClock
    client: httpx.Client


@pytest.fixture
def make_live(clock: VirtualClock) -> Iterator[Callable[..., Live]]:
    """Serve sandboxes on free loopback ports for the test's duration."""
    with ExitStack() as stack:

        def make(scenario: Scenario | str = "healthy", *, seed: int = 7, **options: Any) -> Live:
            app = create_sandbox(scenario, seed=seed, clock=clock, **options)
            running = stack.enter_context(running_sandbox(app))
            client = stack.enter_context(httpx.Client(base_url=running.url, timeout=5.0))
            return Live(running.url, app, clock, client)

        yield make


@pytest.fixture
def live(make_live: Callable[..., Live]) -> Live:
    return make_live()

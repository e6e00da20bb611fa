"""One analysis tick's fan-out over real HTTP: every distinct request of the tick is in
flight at once, and identical requests go out once.

Not timing-based: each endpoint holds its answer until all 50 requests have arrived (or
until a few seconds have passed, which only happens when the fan-out is capped below 50),
and the server records the most requests it held at once. bench/fanout.py measures the
time this takes.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rollout_cli.drivers.http import HttpDriver
from rollout_cli.engine import Measure, RolloutState
from rollout_cli.plan import load_text
from rollout_cli.reconcile.executor import Executor

DISTINCT = 50
SHARED = 10
PATIENCE = 3.0   # seconds an endpoint waits for the others before answering anyway


class GatheringServer(ThreadingHTTPServer):
    """Answers GET /m/NN with {"value": NN, "half": 0.5} once ``expected`` requests are
    in flight together; counts requests per path and the most in flight at once."""

    daemon_threads = True
    request_queue_size = 128   # 50 concurrent connects must not be refused

    def __init__(self, expected: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.expected = expected
        self.condition = threading.Condition()
        self.counts: Counter[str] = Counter()
        self.in_flight = 0
        self.peak = 0
        self.gave_up = False

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def gather(self, path: str) -> None:
        with self.condition:
            self.counts[path] += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.condition.notify_all()
            if not self.condition.wait_for(
                    lambda: self.peak >= self.expected or self.gave_up, timeout=PATIENCE):
                self.gave_up = True   # capped below `expected`: answer, don't wait in waves
                self.condition.notify_all()
            self.in_flight -= 1


class _Handler(BaseHTTPRequestHandler):
    server: GatheringServer

    def do_GET(self) -> None:
        self.server.gather(self.path)
        body = json.dumps({"value": int(self.path.rsplit("/", 1)[-1]), "half": 0.5}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def gathering() -> Iterator[GatheringServer]:
    server = GatheringServer(DISTINCT)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    yield server
    with server.condition:
        server.gave_up = True
        server.condition.notify_all()
    server.shutdown()
    server.server_close()


def plan_text(base_url: str) -> str:
    """50 metrics on 50 URLs, and 10 more reading another field of 10 of those URLs."""
    lines = ["version: 1", "name: fanout",
             f'target: {{base_url: "{base_url}", timeout: 15s, retry: {{attempts: 1}}}}',
             "metrics:"]
    lines += [f"  m{n:02d}: {{http: {{get: /m/{n:02d}}}, select: value}}" for n in range(DISTINCT)]
    lines += [f"  shared{n:02d}: {{http: {{get: /m/{n:02d}}}, select: half}}"
              for n in range(SHARED)]
    return "\n".join([*lines, "stages:", "  - {name: only}", ""])


def test_one_tick_sends_every_distinct_request_at_once_and_duplicates_once(
        gathering: GatheringServer) -> None:
    loaded = load_text(plan_text(gathering.url), "fanout.yaml", {})
    names = tuple(loaded.plan.metrics)
    state = RolloutState(id="fanout", plan=loaded.plan.name)

    with HttpDriver(redactor=loaded.redactor) as http:
        event = Executor(loaded, http).measure(Measure(names, {}, 0), state, 1000.0)

    assert gathering.peak == DISTINCT, f"at most {gathering.peak} requests were in flight"
    assert not gathering.gave_up
    assert gathering.counts == Counter({f"/m/{n:02d}": 1 for n in range(DISTINCT)})
    assert event.errors == {}
    assert event.values == {**{f"m{n:02d}": float(n) for n in range(DISTINCT)},
                               **{f"shared{n:02d}": 0.5 for n in range(SHARED)}}

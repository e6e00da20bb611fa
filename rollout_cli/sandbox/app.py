"""The sandbox as a WSGI application: auth, injected faults, the call log, real delays.

Every ``/api/admin/*`` call is recorded in the call log (``/api/admin/_sandbox/calls``)
with its simulated time and answer status; bodies are redacted and headers are not
stored, so a bearer token never appears there. With a token set, every
``/api/admin/*`` call, ``_sandbox`` ones included, needs ``Authorization: Bearer T``.

Faults (scenario ``faults``) hit admin calls, never ``/api/admin/_sandbox/*``:
an injected 500/503 rejects the call before it is applied; an injected timeout applies
it and then never answers in time. A slow answer (``slow_metrics_delay``) or a timeout
is a delay in simulated seconds: over real HTTP the server thread sleeps
``min(delay / time_scale, max_real_delay)`` real seconds so the client's timeout can
fire; in process (``SandboxTransport``) nothing sleeps and the transport raises
``httpx.ReadTimeout`` instead.
"""

from __future__ import annotations

import hmac
import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from rollout_cli.clock import Clock, ScaledClock
from rollout_cli.redact import Redactor
from rollout_cli.sandbox import reports
from rollout_cli.sandbox.endpoints import ROUTES, handle
from rollout_cli.sandbox.model import BrainModel
from rollout_cli.sandbox.routing import HttpError, Reply, Request, Route, Router
from rollout_cli.sandbox.scenarios import Scenario, load_scenario

if TYPE_CHECKING:
    from rollout_cli.sandbox.metrics import Exposition

DELAY_HEADER = "X-Sandbox-Delay"
FAULT_HEADER = "X-Sandbox-Fault"
ADMIN_PREFIX = "/api/admin/"
SANDBOX_PREFIX = "/api/admin/_sandbox/"
_BODY_LOG_LIMIT = 4096

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass(frozen=True, slots=True)
class CallRecord:
    seq: int
    time: float
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int
    fault: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": round(self.time, 3),
            "method": self.method,
            "path": self.path,
            "query": dict(self.query),
            "body": self.body,
            "status": self.status,
            "fault": self.fault,
        }


class CallLog:
    """Every admin call received, oldest first, bounded."""

    def __init__(self, redactor: Redactor, limit: int = 10_000):
        self._redactor = redactor
        self._records: deque[CallRecord] = deque(maxlen=limit)
        self._lock = threading.Lock()
        self._seq = 0
        # Redacted query strings, shared between the records that have the same one: a
        # simulated week repeats a handful of queries 10,000 times over.
        self._queries: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}

    def record(self, request: Request, reply: Reply, at: float) -> None:
        body = _readable_body(request.body)
        if body is not None:
            body = self._redactor.data(body)
        key = tuple(request.query.items())
        query = self._queries.get(key)
        if query is None:
            if len(self._queries) >= 1024:
                self._queries.clear()
            query = self._queries[key] = self._redactor.data(request.query)
        with self._lock:
            self._seq += 1
            self._records.append(CallRecord(
                self._seq, at, request.method, request.path, query, body, reply.status, reply.fault
            ))

    def since(self, seq: int = 0) -> list[CallRecord]:
        with self._lock:
            return [r for r in self._records if r.seq > seq]


def _readable_body(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body[:_BODY_LOG_LIMIT].decode("utf-8", errors="replace")


class FaultInjector:
    """Decides, deterministically under the seed, which admin calls misbehave and how."""

    KINDS = ("500", "503", "timeout")

    def __init__(self, fraction: float, seed: int):
        self._fraction = fraction
        self._rng = random.Random(f"{seed}:faults")
        self._lock = threading.Lock()

    def draw(self) -> str | None:
        if self._fraction <= 0:
            return None
        with self._lock:
            if self._rng.random() >= self._fraction:
                return None
            return self._rng.choice(self.KINDS)


class SandboxApp:
    """A WSGI callable serving the simulated brain API over one ``BrainModel``."""

    def __init__(
        self,
        model: BrainModel,
        *,
        token: str | None = None,
        time_scale: float = 1.0,
        max_real_delay: float = 3.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.model = model
        self._exposition: Exposition | None = None  # made by the first GET /metrics
        self.calls = CallLog(Redactor([token] if token else []))
        self._token = token
        self._time_scale = time_scale
        self._max_real_delay = max_real_delay
        self._sleep = sleep
        self._faults = FaultInjector(model.scenario.faults.flaky_fraction, model.seed)
        self._router = Router([*ROUTES, *self._own_routes()])
        self._scraped = threading.Condition()
        self.scrapes = 0  # answered GET /metrics so far

    def wait_for_scrape(self, after: int, timeout: float) -> int:
        """Block until /metrics has been answered more than ``after`` times, or
        ``timeout`` passes; the count. For waiting on a scraper without polling."""
        with self._scraped:
            self._scraped.wait_for(lambda: self.scrapes > after, timeout)
            return self.scrapes

    @property
    def clock(self) -> Clock:
        return self.model.clock

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = Request.from_environ(environ)
        reply, status, headers, body = self.serve(request)
        if reply.delay > 0:
            self._sleep(min(reply.delay / self._time_scale, self._max_real_delay))
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [body]

    def serve(self, request: Request) -> tuple[Reply, int, list[tuple[str, str]], bytes]:
        """The reply to ``request`` as it goes on the wire: status, headers, body."""
        reply = self.respond(request)
        body = reply.encoded()
        headers = [
            ("Content-Type", reply.content_type),
            ("Content-Length", str(len(body))),
            *reply.headers,
        ]
        if reply.delay > 0:
            headers.append((DELAY_HEADER, f"{reply.delay:g}"))
        if reply.fault:
            headers.append((FAULT_HEADER, reply.fault))
        return reply, reply.status, headers, body

    def respond(self, request: Request) -> Reply:
        """The answer to one request, with the simulated delay it should arrive after."""
        admin = request.path.startswith(ADMIN_PREFIX)
        if not admin:
            return self._dispatch(request)
        reply = self._admin(request)
        if not request.path.startswith(SANDBOX_PREFIX):
            self.calls.record(request, reply, self.model.elapsed())
        return reply

    def _admin(self, request: Request) -> Reply:
        if not self._authorized(request):
            return HttpError(401, "missing or wrong bearer token",
                             [("WWW-Authenticate", 'Bearer realm="rollout-sandbox"')]).reply()
        if request.path.startswith(SANDBOX_PREFIX):
            return self._dispatch(request)
        return self._dispatch(request, faulty=True)

    def _dispatch(self, request: Request, *, faulty: bool = False) -> Reply:
        try:
            route, params = self._router.match(request.method, request.path)
        except HttpError as exc:
            return exc.reply()
        fault = self._faults.draw() if faulty else None
        if fault in ("500", "503"):
            reply = HttpError(int(fault), "injected fault: the call was not applied").reply()
            reply.fault = fault
            return reply
        request = Request(request.method, request.path, request.query, request.body,
                          request.authorization, params)
        try:
            reply = handle(route, self.model, request)
        except HttpError as exc:
            reply = exc.reply()
        return self._delayed(route, reply, fault)

    def _delayed(self, route: Route, reply: Reply, fault: str | None) -> Reply:
        faults = self.model.scenario.faults
        if fault == "timeout":
            reply.fault, reply.delay = "timeout", faults.timeout
        elif route.metric_read and faults.slow_metrics_delay > 0:
            reply.delay = faults.slow_metrics_delay
        return reply

    def _authorized(self, request: Request) -> bool:
        if self._token is None:
            return True
        expected = f"Bearer {self._token}".encode()
        return hmac.compare_digest(request.authorization.encode(), expected)

    # --- routes that belong to the app rather than to the simulated API ----------------

    def _own_routes(self) -> list[Route]:
        return [
            Route("GET", "/metrics", self._metrics),
            Route("GET", f"{SANDBOX_PREFIX}calls", self._calls),
            Route("GET", f"{SANDBOX_PREFIX}state", self._state),
        ]

    def _metrics(self, model: BrainModel, request: Request) -> Reply:
        # prometheus-client is imported on the first scrape, not with the app: a simulation
        # or an in-process test never serves /metrics.
        if self._exposition is None:
            from rollout_cli.sandbox.metrics import Exposition

            self._exposition = Exposition(model)
        body, content_type = self._exposition.scrape()
        reply = Reply(200, body, content_type=content_type)
        with self._scraped:
            self.scrapes += 1
            self._scraped.notify_all()
        return reply

    def _calls(self, model: BrainModel, request: Request) -> Reply:
        records = self.calls.since(request.integer("since", 0, 0, 2**62))
        return Reply(200, {"count": len(records), "calls": [r.as_json() for r in records]})

    def _state(self, model: BrainModel, request: Request) -> Reply:
        return Reply(200, reports.state(model))


def create_sandbox(
    scenario: Scenario | str = "healthy",
    *,
    seed: int = 0,
    clock: Clock | None = None,
    time_scale: float = 1.0,
    token: str | None = None,
    max_real_delay: float = 3.0,
    sleep: Callable[[float], None] = time.sleep,
) -> SandboxApp:
    """A sandbox app over a fresh model.

    ``scenario`` is a Scenario, a preset name or a YAML file path. Without ``clock`` the
    model runs on ``ScaledClock(time_scale)``; pass a ``VirtualClock`` to drive time by hand.
    ``time_scale`` also converts simulated delays into real sleeps over real HTTP.
    """
    if isinstance(scenario, str):
        scenario = load_scenario(scenario)
    model = BrainModel(scenario, clock or ScaledClock(time_scale), seed)
    return SandboxApp(
        model, token=token, time_scale=time_scale, max_real_delay=max_real_delay, sleep=sleep
    )

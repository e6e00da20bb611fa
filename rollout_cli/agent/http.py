"""The agent's HTTP endpoints, as one WSGI application (served by waitress):

- ``POST /alertmanager``: Alertmanager's webhook (version 4); a bearer token is required
  when the agent has one (``--token-env``). 200 with what was started, 400 naming what is
  wrong with the body, 401 without the token.
- ``GET /metrics``: Prometheus exposition (``metrics.py``).
- ``GET /``: the status page (``page.py``).
- ``GET /healthz``: 200 ``ok`` while the agent runs.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from rollout_cli.agent.alerts import AlertRouter, BadPayload, parse_payload
from rollout_cli.agent.metrics import RolloutCollector
from rollout_cli.agent.page import render_page

# An Alertmanager batch is small; a body past this is refused unread.
MAX_BODY = 1 << 20
# The status page loads nothing: no script, no image, no font, no frame; its one
# <style> element is inline. A browser refuses anything else, should it ever appear.
PAGE_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
               "form-action 'none'; frame-ancestors 'none'")

Respond = Callable[[str, list[tuple[str, str]]], Any]


class AgentApp:
    def __init__(self, router: AlertRouter, views: Callable[[], list[Any]],
                 collector: RolloutCollector, agent: str, token: str | None = None):
        from prometheus_client import CollectorRegistry

        self.router = router
        self.views = views
        self.agent = agent
        self.token = token
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)

    def __call__(self, environ: dict[str, Any], respond: Respond) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/")
        routes = {"/alertmanager": ("POST", self.alertmanager), "/metrics": ("GET", self.metrics),
                  "/": ("GET", self.page), "/healthz": ("GET", self.healthz)}
        if path not in routes:
            return _send(respond, 404, "text/plain", f"no such page: {path}\n")
        allowed, handler = routes[path]
        if method not in (allowed, "HEAD" if allowed == "GET" else allowed):
            return _send(respond, 405, "text/plain", f"{path} takes {allowed}\n",
                         [("Allow", allowed)])
        try:
            return handler(environ, respond)
        except Exception as problem:    # never a traceback to the caller; the log says
            self.router.log(f"{method} {path} failed: {type(problem).__name__}: {problem}")
            return _send(respond, 500, "text/plain", "internal error; see the agent's log\n")

    def alertmanager(self, environ: dict[str, Any], respond: Respond) -> Iterable[bytes]:
        if self.token is not None and not _bearer_ok(environ, self.token):
            return _send(respond, 401, "application/json",
                         json.dumps({"error": "a bearer token is required"}) + "\n",
                         [("WWW-Authenticate", 'Bearer realm="rollout agent"')])
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            return _send(respond, 400, "application/json", json.dumps(
                {"error": f"Content-Length must be 0..{MAX_BODY}"}) + "\n")
        body = environ["wsgi.input"].read(length)
        try:
            alerts = parse_payload(body)
        except BadPayload as bad:
            return _send(respond, 400, "application/json",
                         json.dumps({"error": str(bad)}) + "\n")
        done = self.router.receive(alerts)
        return _send(respond, 200, "application/json", json.dumps(done) + "\n")

    def metrics(self, environ: dict[str, Any], respond: Respond) -> Iterable[bytes]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return _send(respond, 200, CONTENT_TYPE_LATEST, generate_latest(self.registry))

    def page(self, environ: dict[str, Any], respond: Respond) -> Iterable[bytes]:
        return _send(respond, 200, "text/html; charset=utf-8",
                     render_page(self.views(), self.agent),
                     [("Content-Security-Policy", PAGE_POLICY),
                      ("X-Content-Type-Options", "nosniff")])

    def healthz(self, environ: dict[str, Any], respond: Respond) -> Iterable[bytes]:
        return _send(respond, 200, "text/plain", "ok\n")


def _bearer_ok(environ: dict[str, Any], token: str) -> bool:
    given = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(),
                                                              token.encode())


def _send(respond: Respond, code: int, kind: str, body: str | bytes,
          headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    data = body.encode() if isinstance(body, str) else body
    respond(f"{code} {HTTPStatus(code).phrase}",
            [("Content-Type", kind), ("Content-Length", str(len(data))),
             ("Cache-Control", "no-store"), *(headers or [])])
    return [data]

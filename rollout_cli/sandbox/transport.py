"""Talking to a sandbox in process: an httpx transport straight into the app, no sockets
and no WSGI round trip (a simulation sends thousands of requests).

Simulated delays never sleep here. A timed-out admin call (flaky-admin) raises
``httpx.ReadTimeout`` after the sandbox applied it; a slow answer (slow-metrics) raises
it when its simulated delay exceeds the request's read timeout, and arrives otherwise.

With ``elapse`` (a virtual clock's ``advance``), calls take simulated time as they would
over a network: ``latency`` per answer, plus a slow answer's delay, and the whole read
timeout for one that never comes. So nothing a call causes shares the instant before it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx

from rollout_cli.sandbox.app import SandboxApp
from rollout_cli.sandbox.routing import Request

IN_PROCESS_BASE_URL = "http://sandbox.invalid"


class SandboxTransport(httpx.BaseTransport):
    def __init__(self, app: SandboxApp, *, elapse: Callable[[float], Any] | None = None,
                 latency: float = 0.005):
        self.app = app
        self._elapse = elapse
        self._latency = latency

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        answer = Request(
            method=request.method,
            path=url.path or "/",
            query=dict(parse_qsl(url.query.decode("ascii", errors="replace"),
                                 keep_blank_values=True)),
            body=request.read(),
            authorization=request.headers.get("Authorization", ""),
        )
        reply, status, headers, body = self.app.serve(answer)
        read_timeout = request.extensions.get("timeout", {}).get("read")
        if reply.fault == "timeout":
            self._took(read_timeout if read_timeout is not None else reply.delay)
            message = "simulated timeout: the sandbox applied the call but never answered"
            raise httpx.ReadTimeout(message, request=request)
        if reply.delay > 0 and read_timeout is not None and reply.delay > read_timeout:
            self._took(read_timeout)
            raise httpx.ReadTimeout(
                f"simulated slow answer: {reply.delay:g}s > read timeout {read_timeout:g}s",
                request=request,
            )
        self._took(self._latency + reply.delay)
        # A stream, as a network transport hands it over: the client reads it.
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body),
                              request=request)

    def _took(self, seconds: float) -> None:
        if self._elapse is not None and seconds > 0:
            self._elapse(seconds)


def sandbox_client(app: SandboxApp, **client_options: Any) -> httpx.Client:
    """An ``httpx.Client`` wired to ``app`` in process; options go to ``httpx.Client``."""
    client_options.setdefault("base_url", IN_PROCESS_BASE_URL)
    return httpx.Client(transport=SandboxTransport(app), **client_options)

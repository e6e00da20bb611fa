"""Talking to a sandbox in process: an httpx transport straight into the app, no sockets
and no WSGI round trip (a simulation sends thousands of requests).

Simulated delays never sleep here. A timed-out admin call (flaky-admin) raises
``httpx.ReadTimeout`` after the sandbox applied it; a slow answer (slow-metrics) raises
it when its simulated delay exceeds the request's read timeout, and arrives otherwise.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import httpx

from rollout_cli.sandbox.app import SandboxApp
from rollout_cli.sandbox.routing import Request

IN_PROCESS_BASE_URL = "http://sandbox.invalid"


class SandboxTransport(httpx.BaseTransport):
    def __init__(self, app: SandboxApp):
        self.app = app

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        query = request.url.query.decode("ascii", errors="replace")
        answer = Request(
            method=request.method,
            path=request.url.path or "/",
            query=dict(parse_qsl(query, keep_blank_values=True)),
            body=request.read(),
            authorization=request.headers.get("Authorization", ""),
        )
        reply, status, headers, body = self.app.serve(answer)
        if reply.fault == "timeout":
            message = "simulated timeout: the sandbox applied the call but never answered"
            raise httpx.ReadTimeout(message, request=request)
        read_timeout = request.extensions.get("timeout", {}).get("read")
        if reply.delay > 0 and read_timeout is not None and reply.delay > read_timeout:
            raise httpx.ReadTimeout(
                f"simulated slow answer: {reply.delay:g}s > read timeout {read_timeout:g}s",
                request=request,
            )
        return httpx.Response(status, headers=headers, content=body, request=request)


def sandbox_client(app: SandboxApp, **client_options: Any) -> httpx.Client:
    """An ``httpx.Client`` wired to ``app`` in process; options go to ``httpx.Client``."""
    client_options.setdefault("base_url", IN_PROCESS_BASE_URL)
    return httpx.Client(transport=SandboxTransport(app), **client_options)

"""Talking to a sandbox in process: an httpx transport over the WSGI app, no sockets.

Simulated delays never sleep here. A timed-out admin call (flaky-admin) raises
``httpx.ReadTimeout`` after the sandbox applied it; a slow answer (slow-metrics) raises
it when its simulated delay exceeds the request's read timeout, and arrives otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

from rollout_cli.sandbox.app import (
    DELAY_HEADER,
    FAULT_HEADER,
    IN_PROCESS_KEY,
    SandboxApp,
    StartResponse,
)

IN_PROCESS_BASE_URL = "http://sandbox.invalid"


class _InProcess:
    """Marks requests as in-process so the app reports delays instead of sleeping."""

    def __init__(self, app: SandboxApp):
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        environ[IN_PROCESS_KEY] = True
        return self._app(environ, start_response)


class SandboxTransport(httpx.BaseTransport):
    def __init__(self, app: SandboxApp):
        self.app = app
        self._inner = httpx.WSGITransport(app=_InProcess(app))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if response.headers.get(FAULT_HEADER) == "timeout":
            response.close()
            message = "simulated timeout: the sandbox applied the call but never answered"
            raise httpx.ReadTimeout(message, request=request)
        delay = float(response.headers.get(DELAY_HEADER, 0.0))
        read_timeout = request.extensions.get("timeout", {}).get("read")
        if delay > 0 and read_timeout is not None and delay > read_timeout:
            response.close()
            raise httpx.ReadTimeout(
                f"simulated slow answer: {delay:g}s > read timeout {read_timeout:g}s",
                request=request,
            )
        return response


def sandbox_client(app: SandboxApp, **client_options: Any) -> httpx.Client:
    """An ``httpx.Client`` wired to ``app`` in process; options go to ``httpx.Client``."""
    client_options.setdefault("base_url", IN_PROCESS_BASE_URL)
    return httpx.Client(transport=SandboxTransport(app), **client_options)

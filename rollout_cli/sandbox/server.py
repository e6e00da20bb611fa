"""Serving a sandbox over real HTTP: a threaded wsgiref server, in front or in background."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from rollout_cli.clock import Clock
from rollout_cli.sandbox.app import SandboxApp, create_sandbox
from rollout_cli.sandbox.model import BrainModel


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    block_on_close = False  # a thread sleeping out a simulated timeout must not hold up stop
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _AccessLogHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


class SandboxServer:
    """A sandbox listening on ``host:port`` (port 0: any free port)."""

    def __init__(
        self, app: SandboxApp, host: str = "127.0.0.1", port: int = 0, *, access_log: bool = False
    ):
        self.app = app
        handler = _AccessLogHandler if access_log else _QuietHandler
        self._server = make_server(host, port, app, _ThreadingServer, handler)  # type: ignore[arg-type]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._server.serve_forever(poll_interval=poll_interval)

    def start(self) -> None:
        """Serve from a background thread; a short poll keeps ``stop()`` quick."""
        self._thread = threading.Thread(
            target=self.serve_forever, args=(0.05,), name="sandbox", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()


@dataclass(frozen=True)
class RunningSandbox:
    url: str
    app: SandboxApp

    @property
    def model(self) -> BrainModel:
        return self.app.model

    @property
    def clock(self) -> Clock:
        return self.app.clock


@contextmanager
def running_sandbox(
    app: SandboxApp | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[RunningSandbox]:
    """Serve ``app`` (default: a healthy sandbox) on a free loopback port for the block."""
    server = SandboxServer(app or create_sandbox(), host, port)
    server.start()
    try:
        yield RunningSandbox(server.url, server.app)
    finally:
        server.stop()

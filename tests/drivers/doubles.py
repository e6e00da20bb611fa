"""Test doubles for driver tests: a real, scriptable HTTP server on 127.0.0.1 and a fake clock."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = b""  # bytes or str go out as they are; anything else as JSON
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0  # seconds to stall before answering, to provoke read timeouts
    drop: bool = False  # close the connection without answering
    echo: bool = False  # answer with the received request as JSON


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


class ScriptedServer:
    """Answers from a queue of replies (then a default), recording every request."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.default = Reply()
        self.released = threading.Event()  # set on teardown so stalled handlers finish
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._httpd = _Httpd(("127.0.0.1", 0), _Handler)
        self._httpd.scripted = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def queue(self, status: int = 200, times: int = 1, **reply: Any) -> ScriptedServer:
        self._replies.extend([Reply(status=status, **reply)] * times)
        return self

    def answer_always(self, status: int = 200, **reply: Any) -> None:
        self.default = Reply(status=status, **reply)

    def count(self, method: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if method in (None, r.method))

    def take(self, received: Received) -> Reply:
        with self._lock:
            self.requests.append(received)
            return self._replies.popleft() if self._replies else self.default

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.released.set()
        self._httpd.shutdown()
        self._httpd.server_close()


class _Httpd(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # 50 concurrent connects must not be refused
    scripted: ScriptedServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that timed out leave broken pipes behind; that is the point


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is observable
    disable_nagle_algorithm = True  # header and body go out in two writes; don't wait for ACKs
    server: _Httpd

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        received = Received(
            method=self.command,
            path=self.path,
            headers=dict(self.headers.items()),
            body=self.rfile.read(length),
            client_port=self.client_address[1],
        )
        scripted = self.server.scripted
        reply = scripted.take(received)
        if reply.hang:
            scripted.released.wait(reply.hang)
        if reply.drop:
            self.close_connection = True
            return
        self._answer(reply, received)

    def _answer(self, reply: Reply, received: Received) -> None:
        body, content_type = _encode(reply, received)
        self.send_response(reply.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


def _encode(reply: Reply, received: Received) -> tuple[bytes, str]:
    if reply.echo:
        echoed = {
            "method": received.method,
            "path": received.path,
            "headers": received.headers,
            "body": received.body.decode(errors="replace"),
        }
        return json.dumps(echoed).encode(), "application/json"
    if isinstance(reply.body, bytes):
        return reply.body, "application/octet-stream"
    if isinstance(reply.body, str):
        return reply.body.encode(), "text/plain; charset=utf-8"
    return json.dumps(reply.body).encode(), "application/json"


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(float(seconds))
        self.now += float(seconds)

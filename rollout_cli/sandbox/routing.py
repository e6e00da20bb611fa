"""Requests, replies and the route table of the sandbox's WSGI app (no framework)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from rollout_cli.plan.durations import parse_duration
from rollout_cli.sandbox.traffic import BUCKET_SECONDS, HISTORY_SECONDS

if TYPE_CHECKING:
    from rollout_cli.sandbox.model import BrainModel

JSON_TYPE = "application/json"


class HttpError(Exception):
    def __init__(self, status: int, message: str, headers: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []

    def reply(self) -> Reply:
        return Reply(self.status, {"error": self.message, "status": self.status}, self.headers)


@dataclass
class Reply:
    status: int
    body: Any  # JSON-able, or bytes sent as they are
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = JSON_TYPE
    delay: float = 0.0  # simulated seconds before the answer arrives
    fault: str | None = None  # "timeout": the client should never see this answer

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: bytes
    authorization: str = ""
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> Request:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # a garbled length reads as no body; the handler then asks for one
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        return cls(
            method=environ["REQUEST_METHOD"].upper(),
            path=environ.get("PATH_INFO", "") or "/",
            query=query,
            body=body,
            authorization=environ.get("HTTP_AUTHORIZATION", ""),
        )

    def json(self, *, required: bool = True) -> dict[str, Any]:
        """The body as a JSON object; {} for an empty optional body; 400 otherwise."""
        if not self.body.strip():
            if required:
                raise HttpError(400, "a JSON object body is required")
            return {}
        try:
            data = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(400, f"invalid JSON body: {exc}") from exc
        if not isinstance(data, dict):
            raise HttpError(400, "the JSON body must be an object")
        return data

    def window(self, default: str = "5m") -> float:
        text = self.query.get("window", default)
        try:
            seconds = parse_duration(text)
        except ValueError as exc:
            raise HttpError(400, f"window: {exc}") from exc
        if not BUCKET_SECONDS <= seconds <= HISTORY_SECONDS:
            raise HttpError(400, f"window must be between 10s and 1h, got {text!r}")
        return seconds

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        text = self.query.get(name, str(default))
        try:
            value = int(text)
        except ValueError as exc:
            raise HttpError(400, f"{name} must be an integer, got {text!r}") from exc
        if not low <= value <= high:
            raise HttpError(400, f"{name} must be between {low} and {high}, got {value}")
        return value


Handler = Callable[["BrainModel", Request], Reply]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str  # "/api/admin/feature-flags/{flag}"
    handler: Handler
    metric_read: bool = False  # slowed down by the slow-metrics scenario

    @property
    def regex(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.pattern) + "$")


class Router:
    def __init__(self, routes: list[Route]):
        self._routes = [(route, route.regex) for route in routes]

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed: list[str] = []
        for route, regex in self._routes:
            found = regex.match(path)
            if found is None:
                continue
            if route.method == method:
                return route, found.groupdict()
            allowed.append(route.method)
        if allowed:
            allow = ", ".join(sorted(set(allowed)))
            raise HttpError(405, f"method {method} not allowed on {path}", [("Allow", allow)])
        raise HttpError(404, f"no such endpoint: {path}")

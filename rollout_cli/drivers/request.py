"""What a plan sends, built without httpx: ``HttpRequest`` and ``RetryPolicy``, plus the
rules httpx applies only when it sends. Metric providers (``rollout_cli.providers``) build
the requests of metric queries.

``rollout_cli.drivers.http`` sends these; ``rollout_cli.plan.sendable`` builds every one a
plan can make while validating it, so that `validate` refuses what would otherwise fail at
run time, and starts without loading httpx.
"""

from __future__ import annotations

import json as jsonlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from rollout_cli.plan.calls import ResolvedRequest
from rollout_cli.plan.models import IDEMPOTENT_METHODS

if TYPE_CHECKING:
    from rollout_cli.plan.models import RetrySpec


@dataclass(frozen=True)
class HttpRequest:
    """One fully resolved request: absolute URL, final headers, at most one body.

    ``idempotent`` defaults from the method (RFC 9110); a plan can declare a POST
    idempotent or a PUT not.
    """

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    json: Any | None = None
    body: str | bytes | None = None
    timeout: float = 10.0
    idempotent: bool | None = None

    def __post_init__(self) -> None:
        if self.json is not None and self.body is not None:
            raise ValueError("an HTTP request takes json or body, not both")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("an HTTP request needs an absolute http(s) URL")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")
        object.__setattr__(self, "method", self.method.upper())
        if self.idempotent is None:
            object.__setattr__(self, "idempotent", self.method in IDEMPOTENT_METHODS)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: ``attempts`` counts every try, the first one included.

    The wait after try n is ``backoff * 2**(n-1)``, capped at ``max_backoff``; with
    ``jitter`` (full jitter) a random part of it, so that clients retrying together spread out.
    """

    attempts: int = 1
    backoff: float = 1.0
    max_backoff: float = 30.0
    deadline: float | None = None
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")
        if self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("backoff and max_backoff must be >= 0")
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError(f"deadline must be positive, got {self.deadline}")

    def wait_after(self, attempt: int) -> float:
        """The wait after try number ``attempt`` (from 1), before any jitter."""
        return min(self.max_backoff, self.backoff * 2 ** min(attempt - 1, 62))

    def longest(self, timeout: float) -> float:
        """At most how long a send takes whose tries each time out after ``timeout``."""
        return self.attempts * timeout + sum(map(self.wait_after, range(1, self.attempts)))


NO_RETRY = RetryPolicy()


def policy_of(retry: RetrySpec) -> RetryPolicy:
    """The plan's ``retry:`` as the driver takes it."""
    return RetryPolicy(retry.attempts, retry.backoff, retry.max_backoff, retry.deadline)


def request_of(resolved: ResolvedRequest) -> HttpRequest:
    """A plan step's request, its templates filled, as the driver sends it."""
    return HttpRequest(resolved.method, resolved.url, resolved.headers, resolved.json,
                       resolved.body, resolved.timeout, resolved.idempotent)


# What httpx refuses only when it sends, with an exception the driver does not expect (an
# HttpRequest is built on every poll, so it does not pay for these itself).

def check_port(url: str) -> None:
    """Raises ValueError for a port that is not a number from 0 to 65535."""
    _ = urlsplit(url).port   # reading it is the check


def check_header_name(name: str) -> None:
    """Raises ValueError for a header name httpx cannot encode: it takes ASCII only."""
    if not name.isascii():
        raise ValueError("header names are ASCII text")


def check_header_value(value: str) -> None:
    """Raises ValueError for a header value httpx cannot encode: it takes ASCII only."""
    if not value.isascii():
        raise ValueError("header values are ASCII text")


def check_json(body: Any) -> None:
    """Raises ValueError for a body httpx cannot encode as JSON."""
    try:
        jsonlib.dumps(body, allow_nan=False)
    except ValueError:
        raise ValueError("JSON has no NaN or infinity") from None

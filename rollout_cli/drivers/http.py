"""HTTP actions: one httpx.Client, policy-driven retries, outcomes instead of exceptions.

``HttpDriver.send`` turns every HTTP status and every transport failure into an
``HttpOutcome``; deciding whether a status is acceptable is the caller's job (see
``rollout_cli.drivers.expect``).

Retry rules. A retry is only safe when repeating the request cannot apply it twice:

==========================================  ==========  ==============  =======================
what happened                               idempotent  non-idempotent  may_have_reached_server
==========================================  ==========  ==============  =======================
ConnectError, ConnectTimeout, PoolTimeout   retry       retry           False (never sent)
429, 503                                    retry       retry           False (declined)
500, 502, 504                               retry       final           True
ReadTimeout, WriteTimeout, ReadError,
WriteError, RemoteProtocolError             retry       final           True (ambiguous)
any other status, an undecodable response   final       final           True
invalid URL, unsupported scheme             final       final           False
==========================================  ==========  ==============  =======================

429 and 503 are retried even for non-idempotent requests because both say that the server
declined the request without processing it (rate limited, overloaded, in maintenance); that
is how the APIs we drive use them, and a rollout that gives up on the first 503 of a
restarting admin API is worse than the small risk of a server that applies a request and
then answers 503. The same trust makes them not count towards ``may_have_reached_server``.
A 500/502/504 or a lost connection after the request was written may hide an applied
change, so a non-idempotent request stops there and the outcome says so.
``may_have_reached_server`` is true when any attempt may have been applied; the journal
uses it to decide whether an unfinished non-idempotent step may be replayed.

Waits use exponential backoff with full jitter (``random() * min(max_backoff, backoff *
2**n)``), or without it for a policy that says so (notifications wait 0.5 s, then 1 s). A
``Retry-After`` on 429/503 replaces the backoff, capped at ``max_backoff``; when the server
asks for more time than the policy's deadline has left, we stop instead.
"""

from __future__ import annotations

import base64
import json as jsonlib
import math
import random as random_module
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, unquote_plus, urlsplit

import httpx

from rollout_cli import __version__
from rollout_cli.drivers.request import NO_RETRY, HttpRequest, RetryPolicy
from rollout_cli.redact import (
    Redactor,
    is_secret_name,
    is_secret_query_name,
    may_name_secret,
    redact_url,
)

if TYPE_CHECKING:  # both are imported where first needed: most runs never retry or fan out
    from concurrent.futures import ThreadPoolExecutor

    from tenacity import RetryCallState

TEXT_LIMIT = 64 * 1024

# A tick's fan-out sends at most this many requests at once.
POOL_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=32)

# 500 too, for idempotent requests only: asking again changes nothing, and an admin API
# in trouble often answers the next try.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
DECLINED_STATUSES = frozenset({429, 503})
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
AMBIGUOUS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)

_ERROR_LABELS: tuple[tuple[type[Exception], str], ...] = (
    (httpx.ConnectTimeout, "connect timeout"),
    (httpx.ConnectError, "connect error"),
    (httpx.PoolTimeout, "connection pool timeout"),
    (httpx.ReadTimeout, "read timeout"),
    (httpx.WriteTimeout, "write timeout"),
    (httpx.RemoteProtocolError, "connection dropped"),
    (httpx.ReadError, "read error"),
    (httpx.WriteError, "write error"),
    (httpx.UnsupportedProtocol, "unsupported protocol"),
    (httpx.DecodingError, "undecodable response"),
    (httpx.InvalidURL, "invalid URL"),
)


@dataclass(frozen=True)
class HttpOutcome:
    """What happened, redacted. ``status`` is None when no response arrived; ``error`` is
    set only for transport failures (a 500 is a status for ``expect`` to judge), and
    ``error_kind`` then names its kind alone, e.g. ``read timeout``."""

    status: int | None
    headers: dict[str, str]
    json: Any | None
    text: str
    elapsed: float
    attempts: int
    error: str | None
    may_have_reached_server: bool
    error_kind: str | None = None


@dataclass(frozen=True)
class _Attempt:
    """One try's raw result plus the retry decision that belongs to it."""

    response: httpx.Response | None
    failure: Exception | None
    retryable: bool
    may_have_applied: bool
    retry_after: float | None = None


class _Schedule:
    """Tenacity's wait and stop decisions for one ``send``, sharing one drawn delay."""

    def __init__(self, policy: RetryPolicy, rand: Callable[[], float], clock: Callable[[], float]):
        self._policy = policy
        self._random = rand
        self._clock = clock
        self.started = clock()
        self._delays: dict[int, float] = {}

    def remaining(self) -> float | None:
        if self._policy.deadline is None:
            return None
        return self._policy.deadline - (self._clock() - self.started)

    def wait(self, state: RetryCallState) -> float:
        # Memoised per attempt: tenacity asks wait and stop in a version-dependent order.
        number = state.attempt_number
        if number >= self._policy.attempts:
            return 0.0  # no attempt follows; don't spend a random draw on it
        if number not in self._delays:
            self._delays[number] = self._delay(_last(state), number)
        return self._delays[number]

    def stop(self, state: RetryCallState) -> bool:
        if state.attempt_number >= self._policy.attempts:
            return True
        remaining = self.remaining()
        if remaining is None:
            return False
        retry_after = _last(state).retry_after
        if retry_after is not None and retry_after > remaining:
            return True
        return self.wait(state) >= remaining

    def _delay(self, attempt: _Attempt, number: int) -> float:
        if attempt.retry_after is not None:
            return min(attempt.retry_after, self._policy.max_backoff)
        wait = self._policy.wait_after(number)
        return self._random() * wait if self._policy.jitter else wait


def _last(state: RetryCallState) -> _Attempt:
    assert state.outcome is not None  # tenacity only consults wait/stop after an attempt
    result: _Attempt = state.outcome.result()
    return result


def _retry_wanted(state: RetryCallState) -> bool:
    return _last(state).retryable


def _final_attempt(state: RetryCallState) -> _Attempt:
    # Called instead of raising RetryError: the last attempt becomes the outcome.
    return _last(state)


class HttpDriver:
    """Sends ``HttpRequest``s through an ``httpx.Client`` (one connection pool).

    ``transport`` is the test seam (``httpx.MockTransport``, the sandbox's in-process
    ``SandboxTransport``); ``sleep``, ``random`` and ``clock`` drive backoff so tests never wait.
    """

    def __init__(
        self,
        *,
        redactor: Redactor | None = None,
        transport: httpx.BaseTransport | None = None,
        verify: bool | str = True,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = random_module.random,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._redactor = redactor or Redactor()
        self._transport = transport
        self._verify = verify
        self._sleep = sleep
        self._random = random
        self._clock = clock
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0
        self._clients: dict[bool, httpx.Client] = {}   # by "is https"
        self._lock = threading.Lock()

    def __enter__(self) -> HttpDriver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with self._lock:
            clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()

    def send(self, request: HttpRequest, policy: RetryPolicy = NO_RETRY) -> HttpOutcome:
        """Send with retries; never raises for HTTP or transport failures."""
        schedule = _Schedule(policy, self._random, self._clock)
        attempts = [self._attempt(request, schedule.remaining())]
        if attempts[0].retryable and policy.attempts > 1:
            # Only now is tenacity needed; its first attempt is the one already made.
            from tenacity import Retrying

            made = [attempts[0]]

            def attempt() -> _Attempt:
                if made:
                    return made.pop()
                attempts.append(self._attempt(request, schedule.remaining()))
                return attempts[-1]

            Retrying(
                retry=_retry_wanted,
                wait=schedule.wait,
                stop=schedule.stop,
                sleep=self._sleep,
                retry_error_callback=_final_attempt,
            )(attempt)
        elapsed = self._clock() - schedule.started
        redact = _RequestRedactor(request, self._redactor)
        return _outcome(attempts[-1], attempts, elapsed, redact)

    def send_many(
        self, requests: list[tuple[HttpRequest, RetryPolicy]], max_workers: int = 16
    ) -> list[HttpOutcome]:
        """Send concurrently, in input order; identical requests go out once.

        Identity is method, URL, headers and body; the first occurrence's policy is used
        and every duplicate gets the same (immutable) outcome.
        """
        keys = [_identity(request) for request, _ in requests]
        unique: dict[tuple[Any, ...], tuple[HttpRequest, RetryPolicy]] = {}
        for key, pair in zip(keys, requests, strict=True):
            unique.setdefault(key, pair)
        if len(unique) <= 1 or max_workers <= 1:
            outcomes = {key: self.send(*pair) for key, pair in unique.items()}
        else:
            pool = self._pool_of(max_workers)
            futures = {key: pool.submit(self.send, *pair) for key, pair in unique.items()}
            outcomes = {key: future.result() for key, future in futures.items()}
        return [outcomes[key] for key in keys]

    def _pool_of(self, max_workers: int) -> ThreadPoolExecutor:
        # One pool for the driver's life: starting threads every tick costs more than
        # the requests of an in-process simulation.
        if self._pool is None or self._pool_size < max_workers:
            from concurrent.futures import ThreadPoolExecutor

            if self._pool is not None:
                self._pool.shutdown(wait=False)
            self._pool = ThreadPoolExecutor(max_workers=max_workers)
            self._pool_size = max_workers
        return self._pool

    def _attempt(self, request: HttpRequest, remaining: float | None) -> _Attempt:
        timeout = request.timeout
        if remaining is not None:  # an attempt must not outlive the policy's deadline
            timeout = max(min(timeout, remaining), 0.001)
        try:
            response = self._client(request.url).request(
                request.method, request.url, headers=request.headers, json=request.json,
                content=request.body, timeout=timeout)
        except (httpx.HTTPError, httpx.InvalidURL) as failure:
            return _failed_attempt(failure, bool(request.idempotent))
        return _answered_attempt(response, bool(request.idempotent))

    def _client(self, url: str) -> httpx.Client:
        # Plain http never needs a TLS context (loading a CA bundle takes ~0.1 s), so https
        # has a client of its own, made on first use.
        secure = self._transport is None and urlsplit(url).scheme == "https"
        with self._lock:
            if secure not in self._clients:
                self._clients[secure] = httpx.Client(
                    transport=self._transport,
                    verify=_ssl_verify(self._verify) if secure else False,
                    limits=POOL_LIMITS,
                    headers={"User-Agent": f"rollout/{__version__}"},
                    cookies=_NO_COOKIES,
                    trust_env=False,   # straight to the plan's URLs, whatever HTTP_PROXY says
                )
            return self._clients[secure]


# A plan's requests carry what the plan says: cookies a target sets are not sent back.
_NO_COOKIES = CookieJar(DefaultCookiePolicy(allowed_domains=[]))


def _answered_attempt(response: httpx.Response, idempotent: bool) -> _Attempt:
    status = response.status_code
    declined = status in DECLINED_STATUSES
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if declined else None
    return _Attempt(
        response=response,
        failure=None,
        retryable=declined or (idempotent and status in RETRYABLE_STATUSES),
        may_have_applied=not declined,
        retry_after=retry_after,
    )


def _failed_attempt(failure: Exception, idempotent: bool) -> _Attempt:
    if isinstance(failure, NEVER_SENT):
        return _Attempt(None, failure, retryable=True, may_have_applied=False)
    if isinstance(failure, AMBIGUOUS):
        return _Attempt(None, failure, retryable=idempotent, may_have_applied=True)
    # A response that arrived but could not be decoded was certainly processed; the rest
    # (invalid URL, unsupported scheme, proxy refusal) failed before anything was sent.
    answered = isinstance(failure, httpx.DecodingError)
    return _Attempt(None, failure, retryable=False, may_have_applied=answered)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def _outcome(
    last: _Attempt, attempts: list[_Attempt], elapsed: float, redact: _RequestRedactor
) -> HttpOutcome:
    reached = any(attempt.may_have_applied for attempt in attempts)
    if last.response is None:
        assert last.failure is not None
        kind = _error_kind(last.failure)
        detail = str(last.failure)
        return HttpOutcome(
            status=None,
            headers={},
            json=None,
            text="",
            elapsed=elapsed,
            attempts=len(attempts),
            error=redact.text(f"{kind}: {detail}" if detail else kind),
            may_have_reached_server=reached,
            error_kind=kind,
        )
    response = last.response
    text = response.text
    redacted = redact.text(text)   # before cutting: a secret across the cut is masked whole
    body = _json_body(response)
    if body is not None and (redacted != text or may_name_secret(text)):
        body = redact.data(body)
    return HttpOutcome(
        status=response.status_code,
        headers=redact.headers(dict(response.headers.items())),
        json=body,
        text=redacted[:TEXT_LIMIT],
        elapsed=elapsed,
        attempts=len(attempts),
        error=None,
        may_have_reached_server=reached,
    )


def _json_body(response: httpx.Response) -> Any | None:
    """The parsed answer when it says it is JSON or looks like it; else None."""
    looks_like_json = response.content.lstrip()[:1] in (b"{", b"[")
    if "json" not in response.headers.get("Content-Type", "") and not looks_like_json:
        return None
    try:
        return jsonlib.loads(response.content)
    except ValueError:
        return None


def _error_kind(failure: Exception) -> str:
    return next((text for kind, text in _ERROR_LABELS if isinstance(failure, kind)),
                type(failure).__name__)


def _ssl_verify(verify: bool | str) -> bool | ssl.SSLContext:
    # httpx 0.28 deprecates a CA path string; build the context it asks for.
    if verify is False:
        return False
    if isinstance(verify, str) and verify:
        return ssl.create_default_context(cafile=verify)
    return _default_tls()


@lru_cache(maxsize=1)
def _default_tls() -> ssl.SSLContext:
    # Loading the CA bundle costs ~50 ms; every client in the process can share one context.
    return httpx.create_ssl_context()


def _identity(request: HttpRequest) -> tuple[Any, ...]:
    headers = tuple(sorted((name.lower(), value) for name, value in request.headers.items()))
    if request.json is not None:
        body: Any = ("json", jsonlib.dumps(request.json, sort_keys=True, default=str))
    elif isinstance(request.body, str):
        body = ("body", request.body.encode())
    else:
        body = ("body", request.body)
    return (request.method, request.url, headers, body)


class _RequestRedactor:
    """The shared redactor plus the secrets this one request carries (URL, auth headers),
    which the plan loader may not have registered, e.g. a token typed into a URL."""

    def __init__(self, request: HttpRequest, redactor: Redactor):
        self._shared = redactor
        self._own = Redactor(_request_secrets(request))
        self._url = request.url
        self._safe_url = redact_url(request.url, redactor)

    def text(self, value: str) -> str:
        value = value.replace(self._url, self._safe_url)
        return self._own.text(self._shared.text(value))

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {name: self.text(value) for name, value in self._shared.headers(headers).items()}

    def data(self, value: Any) -> Any:
        return self._own.data(self._shared.data(value))


def _request_secrets(request: HttpRequest) -> list[str]:
    secrets = _url_secrets(request.url)
    for name, value in request.headers.items():
        if is_secret_name(name) and value:
            secrets.append(value)
            secrets.extend(value.split()[1:])  # the token of "Bearer <token>"
    return secrets


def _url_secrets(url: str) -> list[str]:
    parts = urlsplit(url)
    secrets = [value for value in (parts.username, parts.password) if value]
    if parts.username is not None:
        # httpx turns userinfo into Basic auth; an echoing server would show the encoded pair.
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        secrets.append(base64.b64encode(pair.encode()).decode())
    for pair in parts.query.split("&"):
        name, _, value = pair.partition("=")
        if value and is_secret_query_name(unquote_plus(name)):
            secrets.extend({value, unquote_plus(value)})
    return secrets

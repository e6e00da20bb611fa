"""HTTP actions: one shared connection pool, policy-driven retries, outcomes instead of exceptions.

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
2**n)``). A ``Retry-After`` on 429/503 replaces the backoff, capped at ``max_backoff``; when
the server asks for more time than the policy's deadline has left, we stop instead.
"""

from __future__ import annotations

import base64
import json as jsonlib
import math
import random as random_module
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, unquote_plus, urlsplit, urlunsplit

import httpx

from rollout_cli import __version__
from rollout_cli.drivers.request import NO_RETRY, HttpRequest, RetryPolicy
from rollout_cli.redact import MASK, Redactor, is_secret_name, is_secret_query_name, may_name_secret

if TYPE_CHECKING:  # both are imported where first needed: most runs never retry or fan out
    from concurrent.futures import ThreadPoolExecutor

    from tenacity import RetryCallState

TEXT_LIMIT = 64 * 1024
DESCRIBE_BODY_LIMIT = 200

# Per thread (see HttpDriver): far more than one thread ever keeps open to one target.
POOL_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=32)

# 500 too, for idempotent requests only: asking again changes nothing, and an admin API
# in trouble often answers the next try.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
DECLINED_STATUSES = frozenset({429, 503})
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
AMBIGUOUS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)

_CHARSET = re.compile(r';\s*charset\s*=\s*"?([\w.:-]+)"?', re.IGNORECASE)

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


@dataclass
class HttpOutcome:
    """What happened, redacted. ``status`` is None when no response arrived; ``error`` is
    set only for transport failures (a 500 is a status for ``expect`` to judge)."""

    status: int | None
    headers: dict[str, str]
    json: Any | None
    text: str
    elapsed: float
    attempts: int
    error: str | None
    may_have_reached_server: bool

    @property
    def responded(self) -> bool:
        return self.status is not None


@dataclass(frozen=True)
class _Attempt:
    """One try's raw result plus the retry decision that belongs to it."""

    response: httpx.Response | None
    failure: Exception | None
    retryable: bool
    may_have_applied: bool
    retry_after: float | None = None
    content: bytes = b""  # the response's body, read


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
        cap = self._policy.max_backoff
        if attempt.retry_after is not None:
            return min(attempt.retry_after, cap)
        exponential = self._policy.backoff * 2 ** min(number - 1, 62)
        return self._random() * min(cap, exponential)


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
    """Sends ``HttpRequest``s over one shared httpx transport (one connection pool).

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
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0
        self._prepared: dict[tuple[Any, ...], _Prepared] = {}
        self._sleep = sleep
        self._random = random
        self._clock = clock
        # Transports (connection pools) without httpx.Client around them: a client adds
        # cookie jars, redirect and auth flows the driver never uses, and costs more than
        # an in-process sandbox answer (a simulation sends thousands of requests). One pool
        # per thread: a tick's fan-out of 50 requests through one pool spends ~30% of a
        # request's time in its bookkeeping under one lock. Plain http never needs a TLS
        # context (its CA bundle takes ~0.1 s to load); https pools come on first use.
        self._given = transport
        self._verify = verify
        self._local = threading.local()
        self._made: list[httpx.BaseTransport] = []
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
        if self._given is not None:
            self._given.close()
        with self._lock:
            made, self._made = self._made, []
        for transport in made:
            transport.close()

    def send(self, request: HttpRequest, policy: RetryPolicy = NO_RETRY) -> HttpOutcome:
        """Send with retries; never raises for HTTP or transport failures."""
        schedule = _Schedule(policy, self._random, self._clock)
        attempts = [self._attempt(request, schedule.remaining())]
        if attempts[0].retryable and policy.attempts > 1:
            # Only now is tenacity needed; its first attempt is the one already made.
            from tenacity import Retrying

            made = iter(attempts[:1])

            def attempt() -> _Attempt:
                first = next(made, None)
                if first is None:
                    attempts.append(self._attempt(request, schedule.remaining()))
                return first or attempts[-1]

            Retrying(
                retry=_retry_wanted,
                wait=schedule.wait,
                stop=schedule.stop,
                sleep=self._sleep,
                retry_error_callback=_final_attempt,
            )(attempt)
        elapsed = self._clock() - schedule.started
        return _outcome(attempts[-1], attempts, elapsed, self._prepare(request).redactor)

    def send_many(
        self, requests: list[tuple[HttpRequest, RetryPolicy]], max_workers: int = 16
    ) -> list[HttpOutcome]:
        """Send concurrently, in input order; identical requests go out once.

        Identity is method, URL, headers and body; the first occurrence's policy is used
        and every duplicate gets its own (shallow) copy of the shared outcome.
        """
        keys = [_identity(request) for request, _ in requests]
        unique: dict[tuple[Any, ...], tuple[HttpRequest, RetryPolicy]] = {}
        for key, pair in zip(keys, requests, strict=True):
            unique.setdefault(key, pair)
        if not unique:
            return []
        if len(unique) == 1 or max_workers <= 1:
            outcomes = {key: self.send(*pair) for key, pair in unique.items()}
        else:
            pool = self._pool_of(max_workers)
            futures = {key: pool.submit(self.send, *pair) for key, pair in unique.items()}
            outcomes = {key: future.result() for key, future in futures.items()}
        given: set[tuple[Any, ...]] = set()
        answers = []
        for key in keys:
            outcome = outcomes[key]
            if key in given:
                outcome = _copy(outcome)
            given.add(key)
            answers.append(outcome)
        return answers

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
            prepared = self._prepare(request)
            if prepared.url is None:
                raise httpx.InvalidURL(prepared.invalid)
            # What httpx.Timeout(timeout).as_dict() gives, without building a Timeout.
            extensions = {"timeout": {"connect": timeout, "read": timeout, "write": timeout,
                                      "pool": timeout}}
            if request.json is None and request.body is None:
                outgoing = prepared.bodiless(request.method, extensions)
            else:
                outgoing = httpx.Request(request.method, prepared.url, headers=prepared.headers,
                                         json=request.json, content=request.body,
                                         extensions=extensions)
            response = self._transport_for(prepared.url).handle_request(outgoing)
            try:
                content = _read(response)
            finally:
                response.close()
        except (httpx.HTTPError, httpx.InvalidURL) as failure:
            return _failed_attempt(failure, bool(request.idempotent))
        return _answered_attempt(response, content, bool(request.idempotent))

    def _transport_for(self, url: httpx.URL) -> httpx.BaseTransport:
        if self._given is not None:
            return self._given
        secure = url.scheme == "https"
        name = "tls" if secure else "plain"
        found: httpx.BaseTransport | None = getattr(self._local, name, None)
        if found is None:
            found = httpx.HTTPTransport(verify=_ssl_verify(self._verify) if secure else False,
                                        limits=POOL_LIMITS)
            setattr(self._local, name, found)
            with self._lock:
                self._made.append(found)
        return found

    def _prepare(self, request: HttpRequest) -> _Prepared:
        # Measurements repeat the same few requests every tick: parse and prepare once.
        key = (request.url, tuple(request.headers.items()))
        found = self._prepared.get(key)
        if found is None:
            if len(self._prepared) >= 256:
                self._prepared.clear()
            found = self._prepared[key] = _Prepared.of(request, self._redactor)
        return found


_DEFAULT_HEADERS = {
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",
    "Connection": "keep-alive",
    "User-Agent": f"rollout/{__version__}",
}


@dataclass(frozen=True)
class _Prepared:
    """What a request's URL and headers become on the wire, and its redactor."""

    url: httpx.URL | None  # None when httpx rejects it, for the reason in ``invalid``
    headers: httpx.Headers
    redactor: _RequestRedactor
    invalid: str = ""
    # Per method, the headers httpx gives a request without a body (Host, Content-Length).
    _bodiless: dict[str, httpx.Headers] = field(default_factory=dict, compare=False)

    def bodiless(self, method: str, extensions: dict[str, Any]) -> httpx.Request:
        """The request httpx would build for ``method`` without a body, made without
        working its headers out again: polls send the same few requests all day."""
        assert self.url is not None
        headers = self._bodiless.get(method)
        if headers is None:
            headers = self._bodiless[method] = httpx.Request(method, self.url,
                                                             headers=self.headers).headers
        request = httpx.Request(method, self.url, headers=headers, stream=httpx.ByteStream(b""),
                                extensions=extensions)
        request.read()
        return request

    @classmethod
    def of(cls, request: HttpRequest, redactor: Redactor) -> _Prepared:
        # What httpx.Client would add: default headers and Basic auth from the URL's
        # userinfo, which wins over an Authorization header as it does there.
        headers = httpx.Headers(_DEFAULT_HEADERS)
        headers.update(request.headers)
        redact = _RequestRedactor(request, redactor)
        try:
            url = httpx.URL(request.url)
        except httpx.InvalidURL as invalid:
            return cls(None, headers, redact, str(invalid))
        if url.username or url.password:
            pair = f"{url.username}:{url.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        return cls(url, headers, redact)


def _read(response: httpx.Response) -> bytes:
    """What ``response.read()`` returns. An answer without a Content-Encoding is taken as it
    comes (``iter_raw``), not through httpx's identity decoder and chunker; an encoded one,
    or one read already, goes through ``read()``."""
    if response.is_stream_consumed or any(
            name.lower() == b"content-encoding" for name, _ in response.headers.raw):
        return response.read()
    return b"".join(response.iter_raw())


def _answered_attempt(response: httpx.Response, content: bytes, idempotent: bool) -> _Attempt:
    status = response.status_code
    declined = status in DECLINED_STATUSES
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if declined else None
    return _Attempt(
        response=response,
        failure=None,
        retryable=declined or (idempotent and status in RETRYABLE_STATUSES),
        may_have_applied=not declined,
        retry_after=retry_after,
        content=content,
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
        return HttpOutcome(
            status=None,
            headers={},
            json=None,
            text="",
            elapsed=elapsed,
            attempts=len(attempts),
            error=redact.text(_error_text(last.failure)),
            may_have_reached_server=reached,
        )
    response = last.response
    # Decoded once: httpx's items() merges repeated names as get() does, under lower-case
    # names, so this Content-Type is what response.headers.get("Content-Type") gives.
    received = dict(response.headers.items())
    content_type = received.get("content-type", "")
    text = _decoded(last.content, content_type)
    shown = redact.text(text[:TEXT_LIMIT])
    return HttpOutcome(
        status=response.status_code,
        headers=redact.headers(received),
        json=_redacted_json(last.content, content_type, text,
                            shown if len(text) <= TEXT_LIMIT else None, redact),
        text=shown,
        elapsed=elapsed,
        attempts=len(attempts),
        error=None,
        may_have_reached_server=reached,
    )


def _decoded(content: bytes, content_type: str) -> str:
    # What response.text gives, for a fraction of its cost: httpx finds the charset with
    # the email package's header parser and decodes incrementally.
    found = _CHARSET.search(content_type)
    try:
        return content.decode(found.group(1) if found else "utf-8", errors="replace")
    except LookupError:  # a charset Python doesn't know
        return content.decode("utf-8", errors="replace")


def _redacted_json(content: bytes, content_type: str, text: str,
                   redacted_text: str | None, redact: Any) -> Any:
    """The parsed body, with secrets masked; walking every value only when one may be there.
    ``redacted_text``: ``text`` redacted, when the caller has it already."""
    body = _json_body(content, content_type)
    if body is None:
        return None
    if may_name_secret(text):
        return redact.data(body)
    if (redact.text(text) if redacted_text is None else redacted_text) != text:
        return redact.data(body)
    return body


def _json_body(content: bytes, content_type: str) -> Any | None:
    looks_like_json = content.lstrip()[:1] in (b"{", b"[")
    if "json" not in content_type and not looks_like_json:
        return None
    try:
        return jsonlib.loads(content)
    except ValueError:
        return None


def _error_text(failure: Exception) -> str:
    label = next(
        (text for kind, text in _ERROR_LABELS if isinstance(failure, kind)),
        type(failure).__name__,
    )
    return f"{label}: {failure}" if str(failure) else label


def _ssl_verify(verify: bool | str) -> bool | ssl.SSLContext:
    # httpx 0.28 deprecates a CA path string; build the context it asks for.
    if verify is False:
        return False
    if isinstance(verify, str) and verify:
        return ssl.create_default_context(cafile=verify)
    return _default_tls()


@lru_cache(maxsize=1)
def _default_tls() -> ssl.SSLContext:
    # Loading the CA bundle costs ~50 ms; every driver in the process can share one context.
    return httpx.create_ssl_context()


def _copy(outcome: HttpOutcome) -> HttpOutcome:
    """``copy.copy(outcome)``, without its reduce protocol: a new object, the same fields."""
    twin = object.__new__(HttpOutcome)
    twin.__dict__.update(outcome.__dict__)
    return twin


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


def redact_url(url: str, redactor: Redactor) -> str:
    """The URL with userinfo and secret-looking query values masked, then redacted."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        # A bare user part is usually a token (https://TOKEN@host), so it goes too.
        netloc = f"{user}:{MASK}@{host}" if has_password else f"{MASK}@{host}"
    query = "&".join(_redact_query_pair(pair) for pair in parts.query.split("&"))
    query = query if parts.query else ""
    safe = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    return redactor.text(safe)


def _redact_query_pair(pair: str) -> str:
    name, has_value, value = pair.partition("=")
    if has_value and value and is_secret_query_name(unquote_plus(name)):
        return f"{name}={MASK}"
    return pair


def describe(request: HttpRequest, redactor: Redactor) -> str:
    """One redacted line for logs, errors and dry runs: ``METHOD URL [body preview]``."""
    redact = _RequestRedactor(request, redactor)
    line = f"{request.method} {redact_url(request.url, redactor)}"
    preview = _body_preview(request, redact)
    return f"{line} {preview}" if preview else line


def _body_preview(request: HttpRequest, redact: _RequestRedactor) -> str:
    if request.json is not None:
        text = jsonlib.dumps(redact.data(request.json), ensure_ascii=False, default=str)
    elif isinstance(request.body, bytes):
        try:
            text = request.body.decode()
        except UnicodeDecodeError:
            return f"<{len(request.body)} bytes>"
    else:
        text = request.body or ""
    text = redact.text(" ".join(text.split()))
    return text if len(text) <= DESCRIBE_BODY_LIMIT else text[: DESCRIBE_BODY_LIMIT - 1] + "…"

"""HttpDriver against a real loopback server; MockTransport only for failures it cannot stage."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from rollout_cli import __version__
from rollout_cli.drivers.http import (
    TEXT_LIMIT,
    HttpDriver,
    HttpOutcome,
    HttpRequest,
    RetryPolicy,
    parse_retry_after,
    redact_url,
)
from rollout_cli.redact import Redactor

from .doubles import FakeClock, ScriptedServer

TOKEN = "s3cr3t-t0ken-value-9f2c"
RETRY4 = RetryPolicy(attempts=4, backoff=1.0, max_backoff=30.0)


@pytest.fixture
def driver(clock: FakeClock) -> Iterator[HttpDriver]:
    # random() == 1.0 makes full jitter deterministic: every wait is its cap.
    with HttpDriver(
        redactor=Redactor([TOKEN]), sleep=clock.sleep, random=lambda: 1.0, clock=clock
    ) as http:
        yield http


def post(url: str, **kwargs: object) -> HttpRequest:
    return HttpRequest("POST", url, json={"rolloutPercentage": 25}, **kwargs)  # type: ignore[arg-type]


def mock_driver(handler: Callable[[httpx.Request], httpx.Response], clock: FakeClock) -> HttpDriver:
    return HttpDriver(
        transport=httpx.MockTransport(handler), sleep=clock.sleep, random=lambda: 1.0, clock=clock
    )


# --- normal paths -------------------------------------------------------------------------


def test_requests_say_who_sends_them_and_userinfo_becomes_basic_auth(
        driver: HttpDriver, server: ScriptedServer) -> None:
    host = server.url.removeprefix("http://")

    driver.send(HttpRequest("GET", f"http://user:pass@{host}/flags",
                            {"Authorization": "Bearer t"}))

    headers = server.requests[0].headers
    assert headers["User-Agent"] == f"rollout/{__version__}"
    assert headers["Authorization"] == "Basic dXNlcjpwYXNz"   # the URL's userinfo wins
    assert headers["Host"] == host


def test_cookies_a_target_sets_are_not_sent_back(
        driver: HttpDriver, server: ScriptedServer) -> None:
    server.queue(200, headers={"Set-Cookie": "session=abc123; Path=/"})

    driver.send(HttpRequest("GET", f"{server.url}/login"))
    driver.send(HttpRequest("GET", f"{server.url}/flags"))

    assert "Cookie" not in server.requests[1].headers


def test_a_gzip_encoded_answer_is_decoded(driver: HttpDriver, server: ScriptedServer) -> None:
    body = json.dumps({"status": "ok", "n": 1}).encode()
    server.queue(200, body=gzip.compress(body), headers={"Content-Encoding": "gzip"})

    outcome = driver.send(HttpRequest("GET", server.url))

    assert (outcome.status, outcome.json, outcome.text) == (200, {"status": "ok", "n": 1},
                                                            body.decode())


def test_get_returns_parsed_json(driver: HttpDriver, server: ScriptedServer) -> None:
    server.queue(200, body={"variants": {"modern": {"successRate": 0.97}}})

    outcome = driver.send(HttpRequest("GET", f"{server.url}/api/admin/ab-testing/results"))

    assert outcome.status == 200
    assert outcome.json == {"variants": {"modern": {"successRate": 0.97}}}
    assert outcome.attempts == 1
    assert outcome.error is None
    assert outcome.headers["content-type"] == "application/json"
    assert server.requests[0].path == "/api/admin/ab-testing/results"


def test_post_sends_json_body_and_headers(driver: HttpDriver, server: ScriptedServer) -> None:
    driver.send(post(f"{server.url}/update", headers={"X-Team": "brain"}))

    received = server.requests[0]
    assert received.method == "POST"
    assert received.body == b'{"rolloutPercentage":25}'
    assert received.headers["X-Team"] == "brain"
    assert received.headers["User-Agent"].startswith("rollout/")


def test_text_body_is_not_json_and_is_truncated(driver: HttpDriver, server: ScriptedServer) -> None:
    server.queue(200, body="x" * (TEXT_LIMIT + 10))

    outcome = driver.send(HttpRequest("GET", server.url))

    assert outcome.json is None
    assert len(outcome.text) == TEXT_LIMIT


def test_a_secret_across_the_cut_is_masked_whole(
        driver: HttpDriver, server: ScriptedServer) -> None:
    server.queue(200, body="x" * (TEXT_LIMIT - 8) + TOKEN)

    outcome = driver.send(HttpRequest("GET", server.url))

    assert outcome.text.endswith("x***") and TOKEN[:8] not in outcome.text


def test_json_without_json_content_type_is_still_parsed(
    driver: HttpDriver, server: ScriptedServer
) -> None:
    server.queue(200, body='{"ok": true}')

    assert driver.send(HttpRequest("GET", server.url)).json == {"ok": True}


def test_one_client_reuses_its_connection(driver: HttpDriver, server: ScriptedServer) -> None:
    driver.send(HttpRequest("GET", server.url))
    driver.send(HttpRequest("GET", server.url))

    first, second = server.requests
    assert first.client_port == second.client_port


# --- retries: idempotent ------------------------------------------------------------------


def test_503_twice_then_200_retries_an_idempotent_get(
    driver: HttpDriver, server: ScriptedServer, clock: FakeClock
) -> None:
    server.queue(503, times=2).queue(200, body={"ok": True})

    outcome = driver.send(HttpRequest("GET", server.url), RETRY4)

    assert (outcome.status, outcome.attempts, server.count()) == (200, 3, 3)
    assert clock.sleeps == [1.0, 2.0]


@pytest.mark.parametrize("status", [502, 504, 429])
def test_gateway_errors_are_retried_for_idempotent_requests(
    driver: HttpDriver, server: ScriptedServer, status: int
) -> None:
    server.queue(status).queue(200)

    outcome = driver.send(HttpRequest("PUT", server.url, json={"value": False}), RETRY4)

    assert (outcome.status, outcome.attempts) == (200, 2)


def test_500_is_retried_for_get(driver: HttpDriver, server: ScriptedServer) -> None:
    server.answer_always(500)

    outcome = driver.send(HttpRequest("GET", server.url), RETRY4)

    assert (outcome.status, outcome.attempts, server.count()) == (500, 4, 4)


def test_exhausted_retries_return_the_last_response(
    driver: HttpDriver, server: ScriptedServer
) -> None:
    server.answer_always(503, body={"error": "maintenance"})

    outcome = driver.send(HttpRequest("GET", server.url), RETRY4)

    assert (outcome.status, outcome.attempts, server.count()) == (503, 4, 4)
    assert outcome.json == {"error": "maintenance"}
    assert outcome.error is None  # a status is for expect to judge, not a transport failure


def test_backoff_doubles_and_is_capped(
    driver: HttpDriver, server: ScriptedServer, clock: FakeClock
) -> None:
    server.answer_always(503)

    driver.send(HttpRequest("GET", server.url), RetryPolicy(attempts=6, backoff=1, max_backoff=3))

    assert clock.sleeps == [1.0, 2.0, 3.0, 3.0, 3.0]


def test_backoff_uses_full_jitter(server: ScriptedServer, clock: FakeClock) -> None:
    server.answer_always(503)
    draws = iter([0.5, 0.25, 0.0])

    policy = RetryPolicy(attempts=4, backoff=2, max_backoff=60)

    with HttpDriver(sleep=clock.sleep, random=lambda: next(draws), clock=clock) as http:
        http.send(HttpRequest("GET", server.url), policy)

    assert clock.sleeps == [0.5 * 2, 0.25 * 4, 0.0]


def test_read_timeout_is_retried_for_get(driver: HttpDriver, server: ScriptedServer) -> None:
    server.queue(200, hang=5.0).queue(200, body={"ok": True})

    outcome = driver.send(HttpRequest("GET", server.url, timeout=0.2), RETRY4)

    assert (outcome.status, outcome.attempts, server.count()) == (200, 2, 2)


def test_dropped_connection_is_retried_for_get(driver: HttpDriver, server: ScriptedServer) -> None:
    server.queue(drop=True).queue(200)

    outcome = driver.send(HttpRequest("GET", server.url), RETRY4)

    assert (outcome.status, outcome.attempts) == (200, 2)


# --- retries: non-idempotent --------------------------------------------------------------


def test_post_read_timeout_is_final_and_may_have_reached_server(
    driver: HttpDriver, server: ScriptedServer
) -> None:
    server.answer_always(200, hang=5.0)

    outcome = driver.send(post(server.url, timeout=0.2), RETRY4)

    assert server.count("POST") == 1
    assert (outcome.status, outcome.attempts) == (None, 1)
    assert outcome.error is not None and outcome.error.startswith("read timeout")
    assert outcome.may_have_reached_server is True


@pytest.mark.parametrize("status", [500, 502, 504])
def test_post_server_error_is_sent_exactly_once(
    driver: HttpDriver, server: ScriptedServer, status: int
) -> None:
    server.answer_always(status)

    outcome = driver.send(post(server.url), RETRY4)

    assert server.count("POST") == 1
    assert (outcome.status, outcome.attempts, outcome.may_have_reached_server) == (status, 1, True)


def test_post_dropped_connection_is_final(driver: HttpDriver, server: ScriptedServer) -> None:
    server.answer_always(drop=True)

    outcome = driver.send(post(server.url), RETRY4)

    assert server.count("POST") == 1
    assert outcome.error is not None and outcome.error.startswith("connection dropped")
    assert outcome.may_have_reached_server is True


def test_post_connection_refused_is_retried(
    driver: HttpDriver, closed_port: int, clock: FakeClock
) -> None:
    policy = RetryPolicy(attempts=3, backoff=0.5, max_backoff=10)

    outcome = driver.send(post(f"http://127.0.0.1:{closed_port}/update"), policy)

    assert (outcome.status, outcome.attempts) == (None, 3)
    assert outcome.error is not None and outcome.error.startswith("connect error: ")
    assert "refused" in outcome.error.lower()
    assert outcome.may_have_reached_server is False
    assert clock.sleeps == [0.5, 1.0]


@pytest.mark.parametrize("status", [503, 429])
def test_post_declined_with_503_or_429_is_retried(
    driver: HttpDriver, server: ScriptedServer, status: int
) -> None:
    server.queue(status, times=2).queue(200)

    outcome = driver.send(post(server.url), RETRY4)

    assert (outcome.status, outcome.attempts, server.count("POST")) == (200, 3, 3)
    assert outcome.may_have_reached_server is True


def test_post_declined_every_time_was_never_applied(
    driver: HttpDriver, server: ScriptedServer
) -> None:
    server.answer_always(503)

    outcome = driver.send(post(server.url), RETRY4)

    assert (outcome.status, outcome.attempts) == (503, 4)
    assert outcome.may_have_reached_server is False


def test_post_declared_idempotent_is_retried_after_502(
    driver: HttpDriver, server: ScriptedServer
) -> None:
    server.queue(502).queue(200)

    outcome = driver.send(post(server.url, idempotent=True), RETRY4)

    assert (outcome.status, outcome.attempts) == (200, 2)


@pytest.mark.parametrize(
    ("failure", "attempts", "reached"),
    [
        (httpx.ConnectTimeout("connect timed out"), 3, False),
        (httpx.PoolTimeout("no free connection"), 3, False),
        (httpx.WriteTimeout("write timed out"), 1, True),
        (httpx.ReadError("connection reset by peer"), 1, True),
        (httpx.RemoteProtocolError("server disconnected"), 1, True),
        (httpx.DecodingError("bad gzip stream"), 1, True),
    ],
)
def test_post_transport_failures(
    clock: FakeClock, failure: httpx.TransportError, attempts: int, reached: bool
) -> None:
    calls: list[httpx.Request] = []

    def fail(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise failure

    with mock_driver(fail, clock) as http:
        outcome = http.send(post("http://target.test/update"), RetryPolicy(attempts=3))

    assert (len(calls), outcome.attempts, outcome.may_have_reached_server) == (
        attempts,
        attempts,
        reached,
    )
    assert outcome.status is None and outcome.error


def test_url_httpx_rejects_becomes_an_outcome(clock: FakeClock) -> None:
    with HttpDriver(sleep=clock.sleep, clock=clock) as http:
        outcome = http.send(HttpRequest("GET", "http://h\x00.test/"), RETRY4)

    assert outcome.status is None and outcome.error is not None
    assert outcome.error.startswith("invalid URL: ")
    assert (outcome.attempts, outcome.may_have_reached_server) == (1, False)


# --- Retry-After and deadlines ------------------------------------------------------------


def test_retry_after_seconds_is_honoured(
    driver: HttpDriver, server: ScriptedServer, clock: FakeClock
) -> None:
    server.queue(429, headers={"Retry-After": "7"}).queue(200)

    outcome = driver.send(post(server.url), RETRY4)

    assert (outcome.status, outcome.attempts) == (200, 2)
    assert clock.sleeps == [7.0]


def test_retry_after_is_capped_at_max_backoff(
    driver: HttpDriver, server: ScriptedServer, clock: FakeClock
) -> None:
    server.queue(503, headers={"Retry-After": "120"}).queue(200)

    driver.send(HttpRequest("GET", server.url), RetryPolicy(attempts=2, max_backoff=5))

    assert clock.sleeps == [5.0]


def test_retry_after_http_date_is_honoured(
    driver: HttpDriver, server: ScriptedServer, clock: FakeClock
) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    server.queue(503, headers={"Retry-After": later}).queue(200)

    driver.send(HttpRequest("GET", server.url), RetryPolicy(attempts=2, max_backoff=9))

    assert clock.sleeps == [9.0]


def test_retry_after_beyond_the_deadline_stops(
    driver: HttpDriver, server: ScriptedServer, clock: FakeClock
) -> None:
    server.queue(503, headers={"Retry-After": "60"}).queue(200)
    policy = RetryPolicy(attempts=5, max_backoff=30, deadline=10)

    outcome = driver.send(HttpRequest("GET", server.url), policy)

    assert (outcome.status, outcome.attempts, clock.sleeps) == (503, 1, [])


def test_deadline_bounds_the_total_backoff(
    driver: HttpDriver, server: ScriptedServer, clock: FakeClock
) -> None:
    server.answer_always(503)
    policy = RetryPolicy(attempts=10, backoff=1, max_backoff=8, deadline=5)

    outcome = driver.send(HttpRequest("GET", server.url), policy)

    # Waits 1 and 2 fit; the next (4 s at t=3 s) would end past the 5 s deadline.
    assert clock.sleeps == [1.0, 2.0]
    assert outcome.attempts == 3
    assert outcome.elapsed == pytest.approx(3.0)


def test_deadline_shortens_the_attempt_timeout(server: ScriptedServer) -> None:
    server.answer_always(200, hang=5.0)
    policy = RetryPolicy(attempts=3, deadline=0.3)

    with HttpDriver() as http:
        started = time.monotonic()
        outcome = http.send(HttpRequest("GET", server.url, timeout=30), policy)

    assert outcome.error is not None and outcome.error.startswith("read timeout")
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("12", 12.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("inf", None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, tzinfo=UTC)

    assert parse_retry_after(header, now) == seconds


# --- concurrency --------------------------------------------------------------------------


def test_send_many_sends_identical_requests_once(
    driver: HttpDriver, server: ScriptedServer
) -> None:
    server.answer_always(200, body={"ok": True})
    same = (HttpRequest("GET", f"{server.url}/results", headers={"A": "1"}), RETRY4)
    other = (HttpRequest("GET", f"{server.url}/results", headers={"A": "2"}), RETRY4)

    outcomes = driver.send_many([same] * 5 + [other])

    assert server.count() == 2
    assert len(outcomes) == 6
    assert all(o.status == 200 and o.json == {"ok": True} for o in outcomes)


def test_send_many_keeps_input_order(driver: HttpDriver, server: ScriptedServer) -> None:
    server.answer_always(200, echo=True)
    requests = [(HttpRequest("GET", f"{server.url}/{n}"), RETRY4) for n in range(10)]

    outcomes = driver.send_many(requests)

    assert [o.json["path"] for o in outcomes] == [f"/{n}" for n in range(10)]


def test_send_many_distinguishes_bodies(driver: HttpDriver, server: ScriptedServer) -> None:
    requests = [(post(server.url), RETRY4), (post(server.url), RETRY4)]
    requests.append((HttpRequest("POST", server.url, json={"rolloutPercentage": 50}), RETRY4))

    assert len(driver.send_many(requests)) == 3
    assert server.count() == 2


def test_send_many_runs_50_requests_concurrently(server: ScriptedServer) -> None:
    server.answer_always(200, hang=0.3)
    requests = [(HttpRequest("GET", f"{server.url}/{n}"), RETRY4) for n in range(50)]

    with HttpDriver() as http:
        started = time.monotonic()
        outcomes = http.send_many(requests, max_workers=50)
        elapsed = time.monotonic() - started

    assert all(o.status == 200 for o in outcomes)
    assert elapsed < 1.5  # serialised, 50 x 0.3 s would take 15 s


def test_send_many_of_nothing(driver: HttpDriver) -> None:
    assert driver.send_many([]) == []


# --- secrets ------------------------------------------------------------------------------


def outcome_strings(outcome: HttpOutcome) -> str:
    return repr(outcome) + str(outcome.json) + outcome.text + str(outcome.headers)


def test_secrets_never_reach_an_outcome(driver: HttpDriver, server: ScriptedServer) -> None:
    server.answer_always(200, echo=True, headers={"X-Echo": f"Bearer {TOKEN}"})
    unregistered = "query-secret-771"
    request = HttpRequest(
        "POST",
        f"http://admin:{TOKEN}@{server.url[7:]}/update?api_key={unregistered}&stage=canary",
        headers={"Authorization": f"Bearer {TOKEN}", "X-Api-Key": "header-secret-442"},
        json={"token": TOKEN, "note": f"uses {TOKEN}"},
    )

    outcome = driver.send(request)

    assert outcome.status == 200
    sent = server.requests[0].headers
    assert sent["X-Api-Key"] == "header-secret-442"
    basic = sent["Authorization"].removeprefix("Basic ")  # httpx prefers the URL's userinfo
    text = outcome_strings(outcome)
    for secret in (TOKEN, unregistered, "header-secret-442", basic):
        assert secret not in text
    assert "stage=canary" in outcome.json["path"]


def test_secrets_never_reach_an_error(clock: FakeClock) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url} with {request.headers['X-Token']}")

    url = "https://user:pa55word-xyz@target.test/flags?token=tok-in-query-123"
    request = HttpRequest("GET", url, headers={"X-Token": "tok-in-header-456"})
    with mock_driver(fail, clock) as http:
        outcome = http.send(request, RetryPolicy(attempts=2))

    assert outcome.error is not None and outcome.error.startswith("connect error: cannot reach")
    for secret in ("pa55word-xyz", "tok-in-query-123", "tok-in-header-456"):
        assert secret not in outcome_strings(outcome)


# --- URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("http://h.test/a?x=1", "http://h.test/a?x=1"),
        ("http://u:pw@h.test/a", "http://u:***@h.test/a"),
        ("https://ghp_abcdef@h.test/a", "https://***@h.test/a"),
        ("http://h.test/a?token=abc&n=2", "http://h.test/a?token=***&n=2"),
        ("http://h.test/a?API_KEY=abc&sig=zz", "http://h.test/a?API_KEY=***&sig=***"),
        ("http://h.test/a?client_secret=&flag", "http://h.test/a?client_secret=&flag"),
        ("http://h.test/a?note=has-" + TOKEN, "http://h.test/a?note=has-***"),
    ],
)
def test_redact_url(url: str, safe: str) -> None:
    assert redact_url(url, Redactor([TOKEN])) == safe


# --- request and policy values ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "idempotent"),
    [("GET", True), ("put", True), ("DELETE", True), ("POST", False), ("PATCH", False)],
)
def test_idempotency_defaults_from_the_method(method: str, idempotent: bool) -> None:
    assert HttpRequest(method, "http://t.test/").idempotent is idempotent


@pytest.mark.parametrize(
    "kwargs",
    [
        {"url": "/relative/path"},
        {"url": "ftp://t.test/x"},
        {"json": {"a": 1}, "body": "a=1"},
        {"timeout": 0},
    ],
)
def test_invalid_requests_are_rejected(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"method": "POST", "url": "http://t.test/x", **kwargs}
    with pytest.raises(ValueError):
        HttpRequest(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs", [{"attempts": 0}, {"backoff": -1}, {"max_backoff": -1}, {"deadline": 0}]
)
def test_invalid_policies_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]

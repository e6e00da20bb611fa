"""Every endpoint of the seed guide, over real HTTP on loopback, in the guide's order."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from rollout_cli.sandbox.endpoints import ROUTES

from .conftest import Live

GUIDE_START_BODY = {
    "testId": "brain-api-modern-rollout",
    "name": "Brain API Modern Implementation Rollout",
    "rolloutPercentage": 10,
    "enabled": True,
    "maxErrorRate": 0.05,
    "minSuccessRate": 0.95,
    "maxResponseTime": 15000,
    "enableAutoRollback": True,
}
FLAG = {"flag": "USE_MODERN_BRAIN_API"}


class Caller:
    """Calls a live sandbox, asserts a 200, and remembers which routes it exercised."""

    def __init__(self, live: Live):
        self.live = live
        self.called: set[tuple[str, str]] = set()

    def __call__(self, method: str, path: str, body: Any = None, **params: Any) -> dict[str, Any]:
        response = self.live.client.request(method, path, json=body, params=params)
        assert response.status_code == 200, f"{method} {path}: {response.text}"
        assert response.headers["content-type"] == "application/json"
        self.called.add((method, path))
        return response.json()

    def advance(self, seconds: float) -> None:
        self.live.clock.advance(seconds)


def _covers(called: set[tuple[str, str]], method: str, pattern: str) -> bool:
    regex = re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", pattern) + "$")
    return any(m == method and regex.match(p) for m, p in called)


def test_the_guide_walkthrough_drives_every_endpoint(live: Live) -> None:
    call = Caller(live)
    admin = "/api/admin"

    # Phase 1: deploy, initialise services, validate.
    assert call("GET", "/api/brain", mode="health")["status"] == "ok"
    assert call("POST", f"{admin}/dashboard/start")["status"] == "running"
    started = call("POST", f"{admin}/ab-testing/start", GUIDE_START_BODY)
    assert (started["status"], started["rolloutPercentage"], started["created"]) == (
        "running", 10, True,
    )
    assert call("POST", f"{admin}/memory/start")["status"] == "running"
    assert call("POST", "/api/brain", {"messages": [{"role": "user", "content": "Hello"}]})[
        "variant"
    ] in ("legacy", "modern")
    flags = call("GET", f"{admin}/feature-flags/status")
    assert flags["flags"]["USE_MODERN_BRAIN_API"]["enabled"] is False
    assert flags["routing"] == {"modernTrafficPercentage": 10, "decidedBy": "ab-test"}

    # Phase 2: 10% traffic, monitored.
    call.advance(30 * 60)
    metrics = call("GET", f"{admin}/dashboard/metrics", window="5m")
    assert metrics["variants"]["modern"]["requests"] > 0
    assert metrics["dashboard"]["running"] is True
    results = call("GET", f"{admin}/ab-testing/results")
    assert results["variants"]["modern"]["successRate"] >= 0.95
    assert 0.05 < results["variants"]["modern"]["requests"] / (
        results["variants"]["modern"]["requests"] + results["variants"]["legacy"]["requests"]
    ) < 0.15
    assert call("GET", f"{admin}/memory/stats")["management"]["running"] is True
    assert call("GET", f"{admin}/dashboard/alerts")["counts"]["critical"] == 0

    # Phase 3 and 4: gradual increase to 100%, then the flag for everyone.
    for percentage in (25, 50, 75, 100):
        updated = call("POST", f"{admin}/ab-testing/update", {"rolloutPercentage": percentage})
        assert updated["modernTrafficPercentage"] == percentage
        call.advance(10 * 60)
    enabled = call("POST", f"{admin}/feature-flags/enable", {**FLAG, "value": True})
    assert enabled["modernTrafficPercentage"] == 100
    call.advance(10 * 60)
    assert call("GET", f"{admin}/ab-testing/results")["variants"]["legacy"]["requests"] == 0
    deleted = call("DELETE", f"{admin}/feature-flags/USE_MODERN_BRAIN_API")
    assert deleted["deleted"] is True
    baseline = call("POST", f"{admin}/dashboard/update-baselines")["baseline"]
    assert baseline["variants"]["modern"]["requests"] > 0

    # Troubleshooting.
    assert call("GET", f"{admin}/memory/leaks")["suspected"] is False
    comparison = call("GET", f"{admin}/performance/comparison", window="1h")
    assert comparison["comparison"]["p95LatencyChangePercent"] < 0  # modern is faster
    tools = call("GET", f"{admin}/tools/performance")["tools"]
    assert tools["web_search"]["modern"]["calls"] > 0
    assert call("GET", f"{admin}/system/load")["requestsPerSecond"] > 0
    analysis = call("GET", f"{admin}/errors/analysis")
    assert analysis["variants"]["modern"]["errors"] == sum(
        analysis["variants"]["modern"]["byStatus"].values()
    )
    logs = call("GET", f"{admin}/logs/errors", limit=100)
    assert 0 < logs["count"] <= 100 and len(logs["entries"]) == logs["count"]
    assert call("POST", "/api/brain/test")["results"].keys() == {"legacy", "modern"}

    # Emergency rollback, as the guide's script runs it.
    disabled = call("POST", f"{admin}/feature-flags/disable", {**FLAG, "value": False})
    assert disabled["modernTrafficPercentage"] == 0
    assert call("POST", f"{admin}/ab-testing/emergency-stop")["emergencyStopped"] is True
    assert "freedMb" in call("POST", f"{admin}/memory/cleanup")
    message = "Brain API rolled back to legacy implementation"
    alert = call("POST", f"{admin}/alerts/emergency", {"message": message})["alert"]
    assert (alert["severity"], alert["message"]) == ("critical", message)
    assert call("POST", f"{admin}/ab-testing/stop")["status"] == "stopped"

    missing = [
        f"{route.method} {route.pattern}"
        for route in ROUTES
        if not _covers(call.called, route.method, route.pattern)
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "invalid JSON body"),
        (b"[1, 2]", "must be an object"),
        (b'{"rolloutPercentage": 10}', "missing field: testId"),
        (b'{"testId": "t"}', "missing field: rolloutPercentage"),
        (b'{"testId": "t", "rolloutPercentage": "25"}', "expected a number"),
        (b'{"testId": "t", "rolloutPercentage": 140}', "from 0 to 100"),
        (b'{"testId": "t", "rolloutPercent": 10}', "unknown field(s): rolloutPercent"),
    ],
)
def test_a_bad_start_body_is_a_400_with_a_json_error(live: Live, body: bytes, message: str) -> None:
    response = live.client.post("/api/admin/ab-testing/start", content=body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert live.client.get("/api/admin/ab-testing/results").json()["status"] == "not-started"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/brain", {}),
        ("POST", "/api/admin/feature-flags/enable", {"value": True}),
        ("POST", "/api/admin/alerts/emergency", {}),
        ("POST", "/api/admin/ab-testing/update", {}),
    ],
)
def test_a_missing_field_is_a_400(live: Live, method: str, path: str, body: dict[str, Any]) -> None:
    response = live.client.request(method, path, json=body)
    assert response.status_code == 400
    assert response.json()["status"] == 400


@pytest.mark.parametrize(
    "query", [{"window": "soon"}, {"window": "2h"}, {"window": "1s"}]
)
def test_a_bad_window_is_a_400(live: Live, query: dict[str, str]) -> None:
    response = live.client.get("/api/admin/dashboard/metrics", params=query)
    assert response.status_code == 400
    assert "window" in response.json()["error"]


def test_unknown_paths_are_404_and_wrong_methods_405(live: Live) -> None:
    missing = live.client.get("/api/admin/nothing-here")
    assert (missing.status_code, missing.json()["status"]) == (404, 404)
    wrong = live.client.get("/api/admin/ab-testing/start")
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "POST"
    assert live.client.put("/api/brain").headers["Allow"] == "GET, POST"


def test_repeating_idempotent_calls_is_fine(live: Live) -> None:
    client = live.client
    assert client.post("/api/admin/ab-testing/stop").json()["status"] == "not-started"
    body = {"testId": "t", "rolloutPercentage": 10}
    assert client.post("/api/admin/ab-testing/start", json=body).json()["created"] is True
    again = client.post("/api/admin/ab-testing/start", json=body)
    assert (again.status_code, again.json()["created"]) == (200, False)
    other = client.post("/api/admin/ab-testing/start", json={**body, "rolloutPercentage": 20})
    assert other.status_code == 409
    for _ in range(2):
        assert client.post("/api/admin/ab-testing/stop").json()["status"] == "stopped"
        assert client.post("/api/admin/dashboard/start").status_code == 200
        assert client.post("/api/admin/memory/start").status_code == 200
    flag = "/api/admin/feature-flags/USE_MODERN_BRAIN_API"
    assert [client.delete(flag).json()["deleted"] for _ in range(2)] == [True, False]


def test_a_stopped_test_cannot_be_updated(live: Live) -> None:
    live.client.post("/api/admin/ab-testing/start", json={"testId": "t", "rolloutPercentage": 10})
    live.client.post("/api/admin/ab-testing/stop")
    response = live.client.post("/api/admin/ab-testing/update", json={"rolloutPercentage": 25})
    assert response.status_code == 409
    assert "stopped" in response.json()["error"]


def test_with_a_token_every_admin_call_needs_it(make_live: Any) -> None:
    live: Live = make_live(token="s3cret-token")
    client = live.client
    assert client.get("/api/admin/feature-flags/status").status_code == 401
    assert client.get("/api/admin/_sandbox/state").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.get("/api/admin/feature-flags/status", headers=wrong).status_code == 401
    assert client.get("/api/brain", params={"mode": "health"}).status_code == 200
    assert client.get("/metrics").status_code == 200
    good = {"Authorization": "Bearer s3cret-token"}
    body = {"testId": "t", "rolloutPercentage": 10, "name": "leak s3cret-token here"}
    assert client.post("/api/admin/ab-testing/start", json=body, headers=good).status_code == 200
    calls = client.get("/api/admin/_sandbox/calls", headers=good)
    assert calls.status_code == 200
    assert [c["status"] for c in calls.json()["calls"]] == [401, 401, 200]
    assert "s3cret-token" not in calls.text


def test_the_call_log_lists_admin_calls_with_body_time_and_status(live: Live) -> None:
    live.clock.advance(90)
    live.client.post("/api/admin/ab-testing/update", json={"rolloutPercentage": 25})
    live.client.post("/api/admin/ab-testing/start", json={"testId": "t", "rolloutPercentage": 25})
    live.client.get("/api/admin/dashboard/metrics", params={"window": "1m"})
    live.client.get("/api/brain", params={"mode": "health"})
    calls = live.client.get("/api/admin/_sandbox/calls").json()["calls"]
    assert [(c["method"], c["path"], c["status"]) for c in calls] == [
        ("POST", "/api/admin/ab-testing/update", 409),
        ("POST", "/api/admin/ab-testing/start", 200),
        ("GET", "/api/admin/dashboard/metrics", 200),
    ]
    assert calls[1]["body"] == {"testId": "t", "rolloutPercentage": 25}
    assert calls[2]["query"] == {"window": "1m"}
    assert {c["time"] for c in calls} == {90}
    later = live.client.get("/api/admin/_sandbox/calls", params={"since": calls[1]["seq"]})
    assert [c["seq"] for c in later.json()["calls"]] == [calls[2]["seq"]]


def test_state_shows_the_model(live: Live) -> None:
    live.client.post("/api/admin/ab-testing/start", json={"testId": "t", "rolloutPercentage": 30})
    live.clock.advance(3600)
    state = live.client.get("/api/admin/_sandbox/state").json()
    assert state["scenario"]["name"] == "healthy"
    assert state["time"] == 3600
    assert state["modernTrafficPercentage"] == 30
    assert state["abTest"]["testId"] == "t"
    assert state["totals"]["modern"]["requests"] > 0


def test_the_user_route_names_the_variant_that_answered(live: Live) -> None:
    live.client.post("/api/admin/feature-flags/enable", json=FLAG)
    response = live.client.post("/api/brain", json={"messages": [{"role": "user", "content": "hi"}]})
    assert response.headers["X-Brain-Variant"] == "modern"
    assert response.json()["variant"] == "modern"


def test_a_client_timeout_fires_against_a_slow_real_answer(make_live: Any) -> None:
    live: Live = make_live("slow-metrics", max_real_delay=0.5)
    with pytest.raises(httpx.ReadTimeout):
        live.client.get("/api/admin/ab-testing/results", timeout=0.1)
    patient = live.client.get("/api/admin/ab-testing/results", timeout=3.0)
    assert patient.status_code == 200
    assert patient.elapsed.total_seconds() >= 0.4

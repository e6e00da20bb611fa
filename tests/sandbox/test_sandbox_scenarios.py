"""Each named scenario produces the metric behaviour its name promises."""

from __future__ import annotations

import contextlib
import json
import statistics
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from .conftest import Live, Sim

MakeSim = Callable[..., Sim]
STAGES = (10, 25, 50, 75, 100)


def _plan_checks(sim: Sim) -> list[str]:
    """The design's example checks, every 5 minutes: what fails, with the numbers."""
    failures = []
    results = sim.results()
    modern, legacy = results["variants"]["modern"], results["variants"]["legacy"]
    if modern["successRate"] < 0.95:
        failures.append(f"success {modern['successRate']} at {results['time']}")
    if legacy["requests"] and modern["p95LatencyMs"] > 1.2 * legacy["p95LatencyMs"]:
        failures.append(f"p95 {modern['p95LatencyMs']} vs {legacy['p95LatencyMs']}")
    return failures


def _run_plan(sim: Sim) -> dict[int, list[str]]:
    """Failed checks per stage over 2-hour bakes, checked every 5 minutes."""
    sim.start_test(STAGES[0])
    failures: dict[int, list[str]] = {}
    for percentage in STAGES:
        sim.set_percentage(percentage)
        failures[percentage] = []
        for _ in range(24):
            sim.advance("5m")
            failures[percentage] += _plan_checks(sim)
    return failures


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_healthy_passes_the_plans_checks_at_every_stage(make_sim: MakeSim, seed: int) -> None:
    failures = _run_plan(make_sim("healthy", seed=seed))
    assert failures == {percentage: [] for percentage in STAGES}


def test_degrade_at_50_fails_the_plans_checks_from_the_50_percent_stage(make_sim: MakeSim) -> None:
    failures = _run_plan(make_sim("degrade-at-50"))
    assert failures[10] == failures[25] == []
    assert len(failures[50]) >= 23  # from the first check after the switch on


def test_degrade_at_50_raises_modern_p95_only_from_50_percent(make_sim: MakeSim) -> None:
    sim = make_sim("degrade-at-50")
    sim.start_test(10)
    p95_by_stage = {}
    for percentage in (10, 25, 50, 75):
        sim.set_percentage(percentage)
        sim.advance("30m")
        p95_by_stage[percentage] = (sim.modern()["p95LatencyMs"], sim.legacy()["p95LatencyMs"])
    for percentage in (10, 25):
        modern, legacy = p95_by_stage[percentage]
        assert modern <= legacy
    for percentage in (50, 75):
        modern, legacy = p95_by_stage[percentage]
        assert modern > 1.2 * legacy
        assert modern == pytest.approx(1.4 * p95_by_stage[10][0], rel=0.01)


def test_degrade_at_50_fails_the_comparison_and_drops_success(make_sim: MakeSim) -> None:
    sim = make_sim("degrade-at-50")
    sim.start_test(25)
    sim.advance("30m")
    before = sim.get("/api/admin/performance/comparison")["comparison"]
    healthy_success = sim.modern()["successRate"]
    sim.set_percentage(50)
    sim.advance("30m")
    after = sim.get("/api/admin/performance/comparison")["comparison"]
    assert before["verdict"] == "modern-better"
    assert after["verdict"] == "modern-worse"
    assert after["p95LatencyChangePercent"] > 20
    assert healthy_success - sim.modern()["successRate"] == pytest.approx(0.06, abs=0.02)


def test_error_spike_jumps_after_an_hour_of_modern_traffic(make_sim: MakeSim) -> None:
    sim = make_sim("error-spike")
    sim.advance("30m")  # time before modern takes traffic does not count
    sim.start_test(25)
    sim.advance("55m")
    assert sim.modern()["errorRate"] < 0.05
    assert sim.get("/api/admin/dashboard/alerts")["counts"]["critical"] == 0
    sim.advance("10m")
    assert sim.modern()["errorRate"] == pytest.approx(0.25, abs=0.04)
    assert sim.legacy()["errorRate"] < 0.05
    alerts = sim.get("/api/admin/dashboard/alerts")["alerts"]
    assert [(a["severity"], a["kind"], a["variant"]) for a in alerts] == [
        ("critical", "error-rate", "modern")
    ]
    analysis = sim.get("/api/admin/errors/analysis")["variants"]["modern"]
    assert analysis["byStatus"]["500"] > analysis["byStatus"]["503"] > analysis["byStatus"]["504"] > 0


def test_failures_answer_500_503_and_504_in_the_guides_proportions(make_sim: MakeSim) -> None:
    sim = make_sim("error-spike")
    sim.start_test(100)
    sim.advance("2h")
    by_type = sim.get("/api/admin/errors/analysis", window="1h")["byType"]
    total = sum(row["count"] for row in by_type)
    assert total > 10_000
    shares = {row["status"]: row["count"] / total for row in by_type}
    assert shares == pytest.approx({500: 0.60, 503: 0.25, 504: 0.15}, abs=0.02)


def test_a_pollers_own_trend_over_the_samples_is_the_reported_trend(make_sim: MakeSim) -> None:
    sim = make_sim("memory-leak")
    sim.start_test(50)
    sim.advance("3h")
    stats = sim.get("/api/admin/memory/stats")
    last_30_minutes = stats["samples"][-30:]
    hours = [sample["time"] / 3600 for sample in last_30_minutes]
    for name in ("legacy", "modern", "total"):
        heap = [sample[name] for sample in last_30_minutes]
        slope = statistics.linear_regression(hours, heap).slope
        assert stats["trendMbPerHour"][name] == pytest.approx(slope, abs=0.05)


def test_memory_leak_grows_modern_heap_steadily(make_sim: MakeSim) -> None:
    sim = make_sim("memory-leak")
    sim.start_test(50)
    sim.advance("2h")
    stats = sim.get("/api/admin/memory/stats")
    trend = stats["trendMbPerHour"]
    assert trend["modern"] == pytest.approx(120, abs=30)
    assert abs(trend["legacy"]) < 50
    samples = stats["samples"]
    assert len(samples) == 60  # one a minute over the last hour
    assert samples[-1]["modern"] - samples[0]["modern"] == pytest.approx(118, abs=20)
    leaks = sim.get("/api/admin/memory/leaks")
    assert leaks["suspected"] is True
    assert [leak["variant"] for leak in leaks["leaks"]] == ["modern"]


def test_memory_stats_are_sent_as_plain_json_like_every_other_answer(make_sim: MakeSim) -> None:
    sim = make_sim("healthy")
    sim.start_test(50)
    for _ in range(3):   # samples made by earlier answers are sent again
        sim.advance("25m")
        response = sim.client.get("/api/admin/memory/stats")
        assert response.headers["content-type"] == "application/json"
        assert response.content == json.dumps(response.json()).encode()
        assert [s["time"] for s in response.json()["samples"]][-1] == response.json()["time"] // 60 * 60


def test_memory_is_stable_when_healthy(make_sim: MakeSim) -> None:
    sim = make_sim("healthy")
    sim.start_test(50)
    sim.advance("6h")
    trend = sim.get("/api/admin/memory/stats")["trendMbPerHour"]
    assert abs(trend["modern"]) < 50 and abs(trend["legacy"]) < 50
    assert sim.get("/api/admin/memory/leaks")["suspected"] is False


def _update(sim: Sim, percentage: int) -> str:
    try:
        response = sim.set_percentage(percentage)
    except httpx.ReadTimeout:
        return "timeout"
    return str(response.status_code)


def test_flaky_admin_rejects_500s_before_applying_and_applies_timeouts(make_sim: MakeSim) -> None:
    sim = make_sim("flaky-admin", seed=5)
    state = sim.get("/api/admin/_sandbox/state")  # never flaky
    while state["abTest"]["status"] != "running":  # retry the start through the faults
        with contextlib.suppress(httpx.ReadTimeout):
            sim.post("/api/admin/ab-testing/start", {"testId": "t", "rolloutPercentage": 0})
        state = sim.get("/api/admin/_sandbox/state")
    outcomes: dict[str, int] = {}
    for attempt in range(1, 201):
        percentage = attempt % 100
        before = sim.get("/api/admin/_sandbox/state")["abTest"]["rolloutPercentage"]
        outcome = _update(sim, percentage)
        after = sim.get("/api/admin/_sandbox/state")["abTest"]["rolloutPercentage"]
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        assert after == (before if outcome in ("500", "503") else percentage), outcome
    assert set(outcomes) == {"200", "500", "503", "timeout"}
    assert 20 <= 200 - outcomes["200"] <= 60  # about 20% of 200 calls
    logged = sim.get("/api/admin/_sandbox/calls")["calls"]
    updates = [c for c in logged if c["path"] == "/api/admin/ab-testing/update"]
    assert sum(c["fault"] == "timeout" for c in updates) == outcomes["timeout"]
    assert sum(c["status"] == 503 for c in updates) == outcomes["503"]


def test_flaky_admin_is_deterministic_under_the_seed(make_sim: MakeSim) -> None:
    runs = []
    for _ in range(2):
        sim = make_sim("flaky-admin", seed=9)
        runs.append([_update(sim, 10) for _ in range(40)])
    assert runs[0] == runs[1]


def test_flaky_admin_times_out_for_real_over_http(make_live: Callable[..., Live]) -> None:
    live = make_live("flaky-admin", seed=5, max_real_delay=0.3)
    outcomes = set()
    for _ in range(40):
        try:
            live.client.get("/api/admin/feature-flags/status", timeout=0.1)
            outcomes.add("answered")
        except httpx.ReadTimeout:
            outcomes.add("timeout")
        if outcomes == {"answered", "timeout"}:
            break
    assert outcomes == {"answered", "timeout"}


def test_slow_metrics_slows_metric_reads_only(make_sim: MakeSim) -> None:
    sim = make_sim("slow-metrics")
    with pytest.raises(httpx.ReadTimeout):
        sim.client.get("/api/admin/ab-testing/results", timeout=5.0)
    patient = sim.client.get("/api/admin/dashboard/metrics", timeout=20.0)
    assert (patient.status_code, patient.headers["X-Sandbox-Delay"]) == (200, "12")
    quick = {"timeout": 1.0}
    assert sim.client.post("/api/admin/dashboard/start", **quick).status_code == 200
    assert sim.client.get("/api/admin/_sandbox/state", **quick).status_code == 200
    assert sim.client.get("/metrics", **quick).status_code == 200


def _assert_no_data(variant: dict[str, Any]) -> None:
    assert variant["requests"] == 0
    assert variant["successRate"] is None and variant["errorRate"] is None
    assert variant["meanLatencyMs"] is None and variant["p95LatencyMs"] is None


def test_no_traffic_reports_no_data_rather_than_success(make_sim: MakeSim) -> None:
    sim = make_sim("no-traffic")
    sim.start_test(50)
    sim.advance("1h")
    for variant in sim.results()["variants"].values():
        _assert_no_data(variant)
    metrics = sim.get("/api/admin/dashboard/metrics")
    _assert_no_data(metrics["overall"])
    assert metrics["overall"]["requestsPerSecond"] == 0
    comparison = sim.get("/api/admin/performance/comparison")["comparison"]
    assert comparison["verdict"] == "insufficient-data"
    assert sim.get("/api/admin/dashboard/alerts")["counts"]["total"] == 0
    assert sim.get("/api/admin/logs/errors")["entries"] == []

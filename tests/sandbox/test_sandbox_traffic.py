"""The traffic model in process, on a virtual clock: routing, flags, auto-rollback, memory."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from rollout_cli.sandbox import SandboxTransport, VirtualClock, create_sandbox, sandbox_client
from rollout_cli.sandbox.latency import LatencyProfile, mixture_quantile
from rollout_cli.sandbox.scenarios import scenario_from_mapping
from rollout_cli.sandbox.traffic import BUCKET_SECONDS, HISTORY_SECONDS

from .conftest import Sim

MakeSim = Callable[..., Sim]
FLAG = {"flag": "USE_MODERN_BRAIN_API"}


def _modern_share(sim: Sim, window: str = "10m") -> float:
    variants = sim.results(window)["variants"]
    modern, legacy = variants["modern"]["requests"], variants["legacy"]["requests"]
    return modern / (modern + legacy)


@pytest.mark.parametrize("percentage", [10, 25, 50, 75])
def test_traffic_splits_by_the_live_percentage(make_sim: MakeSim, percentage: int) -> None:
    sim = make_sim()
    sim.start_test(percentage)
    sim.advance("10m")
    assert _modern_share(sim) == pytest.approx(percentage / 100, abs=0.03)


def test_without_a_test_or_flag_legacy_serves_everything(make_sim: MakeSim) -> None:
    sim = make_sim()
    sim.advance("10m")
    results = sim.results()
    assert results["status"] == "not-started"
    assert results["variants"]["legacy"]["requests"] > 5000
    assert results["variants"]["modern"] == {
        "requests": 0, "errors": 0, "successRate": None, "errorRate": None,
        "meanLatencyMs": None, "p95LatencyMs": None, "latencySamplesMs": [],
    }


def test_the_flag_sends_everyone_to_modern_and_its_disable_is_the_kill_switch(
    make_sim: MakeSim,
) -> None:
    sim = make_sim()
    sim.start_test(10)
    sim.post("/api/admin/feature-flags/enable", FLAG)
    sim.advance("5m")
    assert _modern_share(sim, "5m") == 1.0
    sim.post("/api/admin/feature-flags/disable", FLAG)
    sim.advance("5m")
    assert _modern_share(sim, "5m") == 0.0
    assert sim.results()["status"] == "stopped"


def test_deleting_the_flag_hands_routing_back_to_the_test(make_sim: MakeSim) -> None:
    sim = make_sim()
    sim.start_test(30)
    sim.post("/api/admin/feature-flags/enable", FLAG)
    sim.client.delete("/api/admin/feature-flags/USE_MODERN_BRAIN_API")
    sim.advance("10m")
    assert _modern_share(sim) == pytest.approx(0.30, abs=0.03)


def test_emergency_stop_sends_everything_to_legacy(make_sim: MakeSim) -> None:
    sim = make_sim()
    sim.start_test(50)
    sim.advance("5m")
    stopped = sim.post("/api/admin/ab-testing/emergency-stop").json()
    assert (stopped["status"], stopped["rolloutPercentage"]) == ("stopped", 0)
    sim.advance("5m")
    assert _modern_share(sim, "5m") == 0.0


def test_failed_user_requests_answer_500_503_and_504_in_the_guides_proportions(
    make_sim: MakeSim,
) -> None:
    broken = scenario_from_mapping({"legacy": {"success_rate": 0.0}}, default_name="broken")
    sim = make_sim(broken)
    statuses = [sim.post("/api/brain", {"messages": [{"role": "user", "content": "hi"}]})
                .status_code for _ in range(2000)]
    shares = {code: statuses.count(code) / len(statuses) for code in (500, 503, 504)}
    assert shares == pytest.approx({500: 0.60, 503: 0.25, 504: 0.15}, abs=0.04)


def test_a_mixed_windows_p95_is_the_quantile_of_the_mixture() -> None:
    legacy, modern = LatencyProfile(3000, 7000), LatencyProfile(2700, 6300)
    for weights in ({legacy: 900, modern: 100}, {legacy: 1, modern: 5}, {legacy: 7}):
        p95 = mixture_quantile(weights, 0.95)
        assert p95 is not None
        below = sum(n * profile.cdf(p95) for profile, n in weights.items())
        assert below / sum(weights.values()) == pytest.approx(0.95, abs=1e-9)
    assert mixture_quantile({legacy: 0, modern: 0}) is None


def test_a_real_user_request_counts_in_the_next_window(make_sim: MakeSim) -> None:
    sim = make_sim("no-traffic")
    answer = sim.post("/api/brain", {"messages": [{"role": "user", "content": "Hello"}]})
    assert answer.status_code in (200, 500, 503, 504)
    assert sim.results()["variants"]["legacy"]["requests"] == 0  # its bucket is still open
    sim.advance("10s")
    legacy = sim.legacy()
    assert legacy["requests"] == 1
    assert legacy["errors"] == (answer.status_code != 200)


def _run(seed: int) -> list[dict[str, object]]:
    clock = VirtualClock()
    with sandbox_client(create_sandbox("flaky-admin", seed=seed, clock=clock)) as client:
        seen = []
        for percentage in (10, 25, 50):
            client.post("/api/admin/ab-testing/update", json={"rolloutPercentage": percentage})
            client.post(
                "/api/admin/ab-testing/start",
                json={"testId": "t", "rolloutPercentage": percentage},
            )
            clock.advance(600)
            seen.append(client.get("/api/admin/_sandbox/state").json()["totals"])
            client.post("/api/brain", json={"messages": [{"role": "user", "content": "hi"}]})
        seen.append(client.get("/api/admin/_sandbox/calls").json())
        return seen


def test_the_same_seed_replays_the_same_run() -> None:
    assert _run(seed=11) == _run(seed=11)
    assert _run(seed=11) != _run(seed=12)


def test_auto_rollback_fires_on_the_tests_own_limits_with_the_reason(make_sim: MakeSim) -> None:
    sim = make_sim("error-spike")
    sim.start_test(25, enableAutoRollback=True, maxErrorRate=0.05)
    sim.advance("50m")
    assert sim.results()["status"] == "running"
    sim.advance("20m")  # the spike starts one hour after modern first took traffic
    assert sim.results()["status"] == "running"  # a breach must last 15 minutes
    sim.advance("10m")
    results = sim.results()
    assert (results["status"], results["rolloutPercentage"]) == ("rolled-back", 0)
    rollback = results["autoRollback"]
    assert rollback["fired"] is True
    assert 3600 + 900 < rollback["at"] <= 3600 + 900 + 300
    assert "modern error rate" in rollback["reason"] and "> maxErrorRate 0.05" in rollback["reason"]
    sim.advance("5m")
    assert sim.modern("5m")["requests"] == 0
    update = sim.set_percentage(50)
    assert update.status_code == 409 and "rolled back automatically" in update.json()["error"]
    alerts = sim.get("/api/admin/dashboard/alerts")["alerts"]
    assert any(a["kind"] == "auto-rollback" and a["severity"] == "critical" for a in alerts)


def test_without_auto_rollback_the_spike_keeps_running(make_sim: MakeSim) -> None:
    sim = make_sim("error-spike")
    sim.start_test(25)
    sim.advance("2h")
    assert sim.results()["status"] == "running"
    assert sim.modern()["errorRate"] > 0.2


def test_healthy_traffic_stays_inside_the_guides_limits_for_two_days(make_sim: MakeSim) -> None:
    sim = make_sim()
    sim.start_test(10, enableAutoRollback=True)
    sim.advance("48h")
    results = sim.results()
    assert results["status"] == "running"
    assert results["autoRollback"]["fired"] is False
    assert sim.get("/api/admin/dashboard/alerts")["counts"]["total"] == 0


def test_noise_in_the_first_minutes_of_a_healthy_test_fires_nothing(make_sim: MakeSim) -> None:
    # Regression: when 50 requests were enough to judge, a test started mid-minute at 10%
    # was rolled back (or raised a critical alert) by a few unlucky errors in its first
    # ~100 modern requests: 5 seeds in these 100 did.
    for seed in range(100):
        sim = make_sim("healthy", seed=seed)
        sim.advance(615)  # the first check then sees 45 s of modern traffic
        sim.start_test(10, enableAutoRollback=True)
        for _ in range(3):
            sim.advance("1m")
            assert sim.get("/api/admin/dashboard/alerts")["counts"]["critical"] == 0, seed
        assert sim.results()["status"] == "running", seed


def test_auto_rollback_ignores_tiny_volumes(make_sim: MakeSim) -> None:
    sim = make_sim("error-spike", seed=3)
    sim.start_test(0.1, enableAutoRollback=True)  # about one modern request a minute
    sim.advance("3h")
    assert sim.modern("1h")["errorRate"] > 0.1
    assert sim.results()["status"] == "running"


def test_starting_the_dashboard_or_memory_management_again_keeps_its_start(
    make_sim: MakeSim,
) -> None:
    sim = make_sim()
    for path, report, key in (("dashboard/start", "dashboard/metrics", "dashboard"),
                              ("memory/start", "memory/stats", "management")):
        assert sim.get(f"/api/admin/{report}")[key] == {"running": False, "since": None}
        sim.advance("10m")
        since = sim.post(f"/api/admin/{path}").json()["since"]
        sim.advance("10m")
        assert sim.post(f"/api/admin/{path}").json()["since"] == since
        assert sim.get(f"/api/admin/{report}")[key] == {"running": True, "since": since}


def test_cleanup_frees_garbage_but_not_a_leak(make_sim: MakeSim) -> None:
    sim = make_sim("memory-leak")
    sim.start_test(50)
    sim.advance("1h")
    before = sim.get("/api/admin/memory/stats")
    freed = sim.post("/api/admin/memory/cleanup").json()
    after = sim.get("/api/admin/memory/stats")
    assert freed["freedMb"]["total"] == pytest.approx(
        before["details"]["legacy"]["garbageMb"] + before["details"]["modern"]["garbageMb"], abs=0.01
    )
    assert after["details"]["modern"]["garbageMb"] == 0
    assert after["details"]["modern"]["leakedMb"] == pytest.approx(120, abs=1)
    assert after["heapMb"]["modern"] == pytest.approx(380 + 120, abs=1)


def test_a_heap_over_the_limit_raises_a_critical_alert(make_sim: MakeSim) -> None:
    sim = make_sim("memory-leak")
    sim.start_test(50)
    sim.advance("4h")
    assert sim.get("/api/admin/dashboard/alerts")["counts"]["critical"] == 0
    sim.advance("3h")  # 380 MB + 7 h x 120 MB/h > the 1024 MB limit
    memory = [a for a in sim.get("/api/admin/dashboard/alerts")["alerts"] if a["kind"] == "memory"]
    assert [(a["severity"], a["variant"]) for a in memory] == [("critical", "modern")]


def test_an_emergency_alert_is_listed_for_an_hour(make_sim: MakeSim) -> None:
    sim = make_sim()
    sim.post("/api/admin/alerts/emergency", {"message": "rolled back"})
    alerts = sim.get("/api/admin/dashboard/alerts")
    assert alerts["counts"] == {"warning": 0, "critical": 1, "total": 1}
    assert alerts["alerts"][0]["message"] == "rolled back"
    sim.advance("61m")
    assert sim.get("/api/admin/dashboard/alerts")["counts"]["total"] == 0


def test_a_week_of_traffic_is_fast_and_keeps_only_an_hour_of_history() -> None:
    clock = VirtualClock()
    app = create_sandbox("healthy", seed=1, clock=clock)
    with sandbox_client(app) as client:
        client.post(
            "/api/admin/ab-testing/start",
            json={"testId": "t", "rolloutPercentage": 50, "enableAutoRollback": True},
        )
        clock.advance(48 * 3600)
        started = time.perf_counter()
        client.get("/api/brain", params={"mode": "health"})
        two_days = time.perf_counter() - started
        clock.advance(5 * 24 * 3600)
        client.get("/api/brain", params={"mode": "health"})
    # Generous against a loaded CI machine; bench/sandbox_model.py reports the real numbers.
    assert two_days < 2.0
    # What grows with simulated time: the bucket history (bounded) and one latency
    # profile per behaviour in the totals (a handful), so memory stays flat.
    model = app.model
    assert len(model.history) == HISTORY_SECONDS / BUCKET_SECONDS
    assert all(len(stats.profiles) <= 3 for stats in model.cumulative().values())
    assert model.cumulative()["modern"].requests > 20 * 7 * 86400 * 0.45


def test_in_process_calls_take_simulated_time_when_asked() -> None:
    # An answer takes the transport's latency; a call that never answers takes the whole
    # read timeout, as it would over a network.
    clock = VirtualClock(1000.0)
    app = create_sandbox("flaky-admin", seed=3, clock=clock)
    transport = SandboxTransport(app, elapse=clock.advance, latency=0.01)
    spent = {}
    with httpx.Client(transport=transport, base_url="http://sandbox.invalid",
                      timeout=15.0) as client:
        for _ in range(200):
            before = clock.now()
            try:
                client.get("/api/admin/dashboard/alerts")
                spent.setdefault("answered", clock.now() - before)
            except httpx.ReadTimeout:
                spent.setdefault("timed out", clock.now() - before)
            if len(spent) == 2:
                break
    assert spent == {"answered": pytest.approx(0.01), "timed out": pytest.approx(15.0)}

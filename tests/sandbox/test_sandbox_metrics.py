"""GET /metrics: what a Prometheus scrape sees, and a real Prometheus querying it."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rollout_cli.sandbox import SandboxApp, create_sandbox, running_sandbox
from rollout_cli.sandbox.scenarios import scenario_from_mapping

from .conftest import PrometheusHandle, Sim, next_scrape, wait_until

MakeSim = Callable[..., Sim]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(sim: Sim) -> Samples:
    response = sim.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_metrics_agree_with_the_models_totals(make_sim: MakeSim) -> None:
    sim = make_sim("error-spike")
    sim.start_test(40)
    sim.advance("90m")
    samples = _scrape(sim)
    totals = sim.get("/api/admin/_sandbox/state")["totals"]
    for variant in ("legacy", "modern"):
        by_code = {
            code: _value(samples, "brain_requests_total", variant=variant, code=code)
            for code in ("200", "500", "503", "504")
        }
        assert sum(by_code.values()) == totals[variant]["requests"]
        assert by_code["500"] + by_code["503"] + by_code["504"] == totals[variant]["errors"]
        count = _value(samples, "brain_request_duration_seconds_count", variant=variant)
        assert count == totals[variant]["requests"]
        assert _value(samples, "brain_request_duration_seconds_bucket", variant=variant, le="+Inf") == count
        mean = _value(samples, "brain_request_duration_seconds_sum", variant=variant) / count
        assert mean * 1000 == pytest.approx(totals[variant]["meanLatencyMs"], rel=1e-3)
    assert _value(samples, "brain_rollout_percentage") == 40
    heap_mb = sim.get("/api/admin/memory/stats")["heapMb"]["modern"]
    assert _value(samples, "brain_heap_bytes", variant="modern") == pytest.approx(heap_mb * 2**20, rel=1e-4)


def test_histogram_buckets_are_cumulative_and_place_the_p95(make_sim: MakeSim) -> None:
    sim = make_sim()
    sim.start_test(50)
    sim.advance("30m")
    samples = _scrape(sim)
    bounds = ["0.5", "1", "2", "3", "4", "5", "7.5", "10", "15", "20", "30", "60", "+Inf"]
    counts = [
        _value(samples, "brain_request_duration_seconds_bucket", variant="modern", le=le)
        for le in bounds
    ]
    assert counts == sorted(counts)
    # The modern profile's p95 is 6.3 s: 95% of requests fall between the 5 s and 7.5 s bounds.
    assert counts[5] / counts[-1] < 0.95 < counts[6] / counts[-1]


def test_counters_never_go_down_while_the_rollout_moves(make_sim: MakeSim) -> None:
    sim = make_sim("error-spike")
    sim.start_test(10, enableAutoRollback=True)
    previous: Samples = {}
    for percentage in (25, 50, 75, 100, 50, 0):
        sim.set_percentage(percentage)
        sim.advance("20m")
        samples = {k: v for k, v in _scrape(sim).items() if k[0].endswith(("_total", "_bucket", "_count"))}
        assert all(samples[key] >= value for key, value in previous.items())
        previous = samples
    assert _value(previous, "brain_auto_rollbacks_total") == 1


def test_two_sandboxes_in_one_process_keep_their_own_metrics(make_sim: MakeSim) -> None:
    busy, idle = make_sim("healthy"), make_sim("no-traffic")
    busy.advance("10m")
    assert _value(_scrape(busy), "brain_requests_total", variant="legacy", code="200") > 0
    assert _value(_scrape(idle), "brain_requests_total", variant="legacy", code="200") == 0


MODERN_ERROR_RATIO = (
    'sum(rate(brain_requests_total{variant="modern",code=~"5.."}[30s]))'
    ' / sum(rate(brain_requests_total{variant="modern"}[30s]))'
)


def _wait_for_value(prometheus: PrometheusHandle, promql: str, within: float,
                    app: SandboxApp) -> float:
    result = wait_until(lambda: prometheus.query(promql), within,
                        f"no value for {promql} ({prometheus.log_path})", next_scrape(app))
    return float(result[0]["value"][1])


def test_a_real_prometheus_scrapes_the_modern_error_ratio(
    prometheus: Callable[[list[str]], PrometheusHandle],
) -> None:
    # Modern fails 20% of 100 req/s; at 60x, every real second is a simulated minute.
    scenario = scenario_from_mapping(
        {"requests_per_second": 100, "modern": {"success_rate": 0.8}}, default_name="ratio"
    )
    app = create_sandbox(scenario, seed=4, time_scale=60.0)
    with running_sandbox(app) as running:
        body = {"testId": "t", "rolloutPercentage": 50}
        assert httpx.post(f"{running.url}/api/admin/ab-testing/start", json=body).status_code == 200
        server = prometheus([running.url.removeprefix("http://")])
        ratio = _wait_for_value(server, MODERN_ERROR_RATIO, within=30.0, app=app)
    assert ratio == pytest.approx(0.20, abs=0.02)

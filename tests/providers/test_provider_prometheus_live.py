"""Split by label against a real Prometheus scraping a real sandbox: one `sum by (variant)`
query answers a value per variant, and a range query gives each part its points, which
feed a compare check."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from rollout_cli.drivers.http import HttpDriver
from rollout_cli.drivers.metrics import MetricFetcher
from rollout_cli.engine.checks import Sample, Sides, evaluate
from rollout_cli.plan import load_text
from rollout_cli.sandbox import create_sandbox, running_sandbox
from rollout_cli.sandbox.scenarios import scenario_from_mapping
from tests.sandbox.conftest import next_scrape, start_prometheus, wait_until

PLAN = """\
version: 1
name: split
target: {base_url: "http://127.0.0.1:9", retry: {attempts: 1}}
metrics:
  requests:
    prometheus:
      url: PROM
      query: sum by (variant) (brain_requests_total)
      split: {label: variant, parts: [modern, legacy, canary]}
  heap_mb:
    prometheus:
      url: PROM
      query: sum by (variant) (brain_heap_bytes) / 1048576
      range: 20s
      step: 1s
      split: {label: variant, parts: [modern, legacy]}
checks:
  heap-vs-legacy:
    metric: heap_mb.modern
    baseline: heap_mb.legacy
    window: 1h
    compare: {method: mann-whitney, min_samples: 5, worse: higher, allowed: "+0%"}
analysis: {interval: 1m, checks: [heap-vs-legacy]}
stages:
  - {name: half, bake: 1m, analysis: {checks: [heap-vs-legacy]}}
"""


def _by_variant(url: str, promql: str, at: float) -> dict[str, float]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": promql, "time": f"{at:.3f}"})
    return {r["metric"]["variant"]: float(r["value"][1]) for r in answer.json()["data"]["result"]}


def test_one_query_answers_every_variant_and_a_range_feeds_a_compare_check(tmp_path: Path):
    # Legacy's heap is well above modern's (420 vs 380 MB): modern is not worse.
    scenario = scenario_from_mapping({"requests_per_second": 100}, default_name="split")
    app = create_sandbox(scenario, seed=4, time_scale=60.0)
    with running_sandbox(app) as running:
        body = {"testId": "t", "rolloutPercentage": 50}
        assert httpx.post(f"{running.url}/api/admin/ab-testing/start",
                          json=body).status_code == 200
        prometheus = start_prometheus([running.url.removeprefix("http://")], tmp_path)
        try:
            # 20 seconds of heap points at a 1 s scrape, for the range query.
            wait_until(lambda: len(_range_points(prometheus.url)) >= 15, 60.0,
                       "prometheus has not scraped 15 times", next_scrape(app))
            plan = load_text(PLAN.replace("PROM", prometheus.url), "p.yaml", {}).plan
            now = time.time()
            with HttpDriver() as http:
                values, errors = MetricFetcher(plan, http).fetch(
                    ["requests.modern", "requests.legacy", "requests.canary",
                     "heap_mb.modern", "heap_mb.legacy"], {}, now)
            expected = _by_variant(prometheus.url, "sum by (variant) (brain_requests_total)",
                                   now)
        finally:
            prometheus.stop()

    assert errors == {}
    assert values["requests.modern"] == expected["modern"] > 0
    assert values["requests.legacy"] == expected["legacy"] > 0
    assert values["requests.canary"] is None              # no such variant: no data
    modern, legacy = values["heap_mb.modern"], values["heap_mb.legacy"]
    assert isinstance(modern, list) and len(modern) >= 15 and isinstance(legacy, list)
    verdict = evaluate("heap-vs-legacy", plan.checks["heap-vs-legacy"], [], now, [], None,
                       Sides([Sample(now, v) for v in modern], [Sample(now, v) for v in legacy],
                             whole=(True, True, False, False)))
    assert verdict.phase == "pass", verdict.reason
    assert verdict.reason.startswith("heap-vs-legacy: heap_mb.modern vs heap_mb.legacy: -")


def _range_points(url: str) -> list[object]:
    end = time.time()
    answer = httpx.get(f"{url}/api/v1/query_range", params={
        "query": "sum(brain_rollout_percentage)", "start": f"{end - 20:.3f}", "end": f"{end:.3f}",
        "step": "1"}).json()
    result = answer["data"]["result"]
    return result[0]["values"] if result else []

"""The five outcomes again, for real: `rollout run` over HTTP against sandboxes running
600x faster than real time, once with the admin API's metrics and once with PromQL
through a real Prometheus scraping the sandboxes. All scenarios run side by side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from rollout_cli.plan import load_text
from rollout_cli.sandbox import SandboxApp, create_sandbox, load_scenario, running_sandbox
from tests.conftest import PLANS, ROOT
from tests.sandbox.conftest import next_scrape, start_prometheus, wait_until


def sandbox(scenario: str):  # type: ignore[no-untyped-def]
    """A sandbox 600x faster than real time. Its A/B framework's own auto-rollback gets a
    1-hour fuse: squeezed into real seconds, the framework's 15-minute fuse races our
    checks' sampling, and here we want to see our checks act (the simulation tests the
    framework's fuse at its real pace)."""
    preset = replace(load_scenario(scenario), auto_rollback_sustain=3600.0)
    return running_sandbox(create_sandbox(preset, seed=11, time_scale=TIME_SCALE,
                                          max_real_delay=0.2))


SCENARIOS = ("healthy", "degrade-at-50", "memory-leak", "error-spike", "no-traffic",
             "flaky-admin")
TIME_SCALE = 600


def _run_all(plan: Path, tmp_path: Path, env_for) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    """Start one `rollout run --auto-approve` per scenario, all at once; their results."""
    processes = {}
    for scenario in SCENARIOS:
        env = {**os.environ, **env_for(scenario), "NO_COLOR": "1"}
        processes[scenario] = subprocess.Popen(
            [sys.executable, "-m", "rollout_cli", "run", str(plan), "--auto-approve",
             "--output", "json", "--state-dir", str(tmp_path / scenario)],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = {}
    for scenario, process in processes.items():
        out, err = process.communicate(timeout=180)
        assert out.strip(), f"{scenario}: no result; stderr: {err[-2000:]}"
        results[scenario] = {**json.loads(out.strip().splitlines()[-1]), "log": err,
                             "code": process.returncode}
    return results


def _assert_outcomes(results: dict[str, dict]) -> None:
    def show(name: str) -> str:
        return f"{name}: {results[name]['reason'] or results[name]['pause_reason']}\n" + \
            results[name]["log"][-3000:]

    assert (results["healthy"]["phase"], results["healthy"]["code"]) == ("succeeded", 0), \
        show("healthy")
    degrade = results["degrade-at-50"]
    assert (degrade["phase"], degrade["code"], degrade["percentage"]) == \
        ("rolled-back", 1, 50), show("degrade-at-50")
    assert "latency-vs-legacy" in degrade["reason"], show("degrade-at-50")
    leak = results["memory-leak"]
    assert leak["phase"] == "rolled-back" and "memory-stable" in leak["reason"], \
        show("memory-leak")
    spike = results["error-spike"]
    assert spike["phase"] == "rolled-back" and "success-rate" in spike["reason"], \
        show("error-spike")
    idle = results["no-traffic"]
    assert (idle["phase"], idle["code"], idle["percentage"]) == ("paused", 3, 10), \
        show("no-traffic")
    assert "inconclusive" in idle["pause_reason"], show("no-traffic")
    assert results["flaky-admin"]["phase"] == "succeeded", show("flaky-admin")


def test_outcomes_over_http_against_the_sandbox(tmp_path: Path):
    with ExitStack() as stack:
        urls = {scenario: stack.enter_context(sandbox(scenario)).url for scenario in SCENARIOS}
        results = _run_all(PLANS / "brain-api-demo.yaml", tmp_path,
                           lambda scenario: {"BRAIN_API_URL": urls[scenario]})

    _assert_outcomes(results)


def _wait_for_targets(prometheus_url: str, count: int, app: SandboxApp,
                      within: float = 30.0) -> None:
    def scraped() -> bool:
        answer = httpx.get(f"{prometheus_url}/api/v1/query",
                           params={"query": "count(brain_rollout_percentage)"}).json()
        result = answer["data"]["result"]
        return bool(result) and int(float(result[0]["value"][1])) == count

    wait_until(scraped, within, "prometheus did not scrape every sandbox", next_scrape(app))


def test_outcomes_with_promql_through_a_real_prometheus(tmp_path: Path):
    with ExitStack() as stack:
        sandboxes = {scenario: stack.enter_context(sandbox(scenario)) for scenario in SCENARIOS}
        instances = {s: box.url.removeprefix("http://") for s, box in sandboxes.items()}
        prometheus = start_prometheus(list(instances.values()), tmp_path)
        stack.callback(prometheus.stop)
        _wait_for_targets(prometheus.url, len(SCENARIOS), sandboxes["healthy"].app)
        results = _run_all(ROOT / "examples" / "brain-api-prometheus.yaml", tmp_path,
                           lambda scenario: {"BRAIN_API_URL": sandboxes[scenario].url,
                                             "PROM_URL": prometheus.url,
                                             "SANDBOX_INSTANCE": instances[scenario]})

    _assert_outcomes(results)


@pytest.mark.parametrize("plan", [PLANS / "brain-api-demo.yaml",
                                  ROOT / "examples" / "brain-api-prometheus.yaml"])
def test_fast_plans_are_the_brain_plan_fast_forwarded(plan):
    def shape(path: Path) -> list[object]:
        loaded = load_text(path.read_bytes(), str(path), {}).plan
        return [[(s.name, s.percentage, s.gate, [str(getattr(x, "request", "run"))
                                                 for x in s.steps]) for s in loaded.stages],
                [str(step.request) for step in loaded.rollback],
                sorted(name for name, check in loaded.checks.items() if not check.dry_run)]

    assert shape(plan) == shape(PLANS / "brain-api.yaml")

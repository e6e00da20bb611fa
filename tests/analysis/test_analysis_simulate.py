"""`rollout simulate` of the brain API's 48-hour plan: each sandbox scenario ends the way
the guide's criteria say it should, for the reason it should."""

from __future__ import annotations

import json
import os

import pytest

from rollout_cli.simulation import simulate
from tests.conftest import PLANS

BRAIN = PLANS / "brain-api.yaml"
ENV = {"BRAIN_API_TOKEN": ""}


@pytest.fixture(scope="module")
def outcomes() -> dict[str, object]:
    return {scenario: simulate(BRAIN, scenario, seed=7, env=ENV)
            for scenario in ("healthy", "degrade-at-50", "memory-leak", "error-spike",
                             "no-traffic", "flaky-admin")}


def test_healthy_succeeds_through_every_stage(outcomes):
    result = outcomes["healthy"]

    assert result.phase == "succeeded", result.reason
    assert result.max_percentage == 100
    assert 36 * 3600 <= result.simulated <= 48 * 3600
    completed = [e["stage"] for e in result.trace if e["action"] == "stage-completed"]
    assert completed[-3:] == ["canary-75", "full", "legacy-cleanup"]


def test_degradation_at_50_rolls_back_there_naming_a_compare_check(outcomes):
    result = outcomes["degrade-at-50"]

    assert result.phase == "rolled-back"
    assert result.max_percentage == 50
    rollback = next(e for e in result.trace if e["action"] == "rollback-started")
    assert rollback["stage"] == "canary-50"
    assert "-vs-legacy: modern_" in rollback["reason"] and "-> fail" in rollback["reason"]


def test_memory_leak_is_caught_by_the_trend_check(outcomes):
    result = outcomes["memory-leak"]

    assert result.phase == "rolled-back"
    assert "memory-stable: slope over 1h" in result.reason
    assert result.max_percentage < 100


def test_error_spike_is_caught_by_the_success_rate_check(outcomes):
    result = outcomes["error-spike"]

    assert result.phase == "rolled-back"
    assert "success-rate:" in result.reason and "-> fail" in result.reason


def test_no_traffic_pauses_as_inconclusive_and_never_promotes(outcomes):
    result = outcomes["no-traffic"]

    assert result.phase == "paused"
    assert result.exit_code == 3
    assert "inconclusive" in result.reason and "no data" in result.reason
    assert result.max_percentage == 10
    assert not [e for e in result.trace if e["action"] == "stage-completed"
                and e["stage"] == "canary-10"]


def test_flaky_admin_still_completes_through_retries(outcomes):
    result = outcomes["flaky-admin"]

    assert result.phase == "succeeded", result.reason
    assert result.max_percentage == 100


def test_the_same_seed_gives_the_same_simulation_retries_included(outcomes):
    # flaky-admin makes the driver retry; the jitter between tries comes from the seed.
    again = simulate(BRAIN, "flaky-admin", seed=7, env=ENV)

    assert again.to_dict() == outcomes["flaky-admin"].to_dict()


def test_calls_counts_every_request_sent_to_the_target(outcomes):
    from rollout_cli.sandbox import VirtualClock, create_sandbox
    from rollout_cli.simulation import START

    app = create_sandbox("flaky-admin", seed=7, clock=VirtualClock(START))
    result = simulate(BRAIN, sandbox=app, env=ENV)

    admin = len(app.calls.since(0))   # the sandbox logs every /api/admin/* call it got
    assert result.calls >= admin > outcomes["healthy"].rounds


def test_simulate_command_prints_trace_and_exits_like_a_run(rollout):
    text = rollout("simulate", str(BRAIN), "--scenario", "memory-leak", "--seed", "7")
    data = rollout("simulate", str(BRAIN), "--scenario", "memory-leak", "--seed", "7",
                   "--output", "json")

    assert text.code == data.code == 1
    assert "Outcome: rolled-back after" in text.out and "memory-stable" in text.out
    parsed = json.loads(data.out)
    assert parsed["phase"] == "rolled-back" and parsed["trace"][0]["action"] == "stage-started"


def test_unknown_scenario_is_a_usage_error(rollout):
    result = rollout("simulate", str(BRAIN), "--scenario", "sunny")

    assert result.code == 2
    assert "sunny" in result.err


SEEDS = int(os.environ.get("ROLLOUT_SEEDS", "8"))


@pytest.mark.parametrize("scenario", ["healthy", "degrade-at-50"])
def test_noise_does_not_change_the_outcome_across_seeds(scenario):
    """ROLLOUT_SEEDS=200 runs the full statistical check (bench/seeds.py prints counts)."""
    phases = []
    for seed in range(SEEDS):
        result = simulate(BRAIN, scenario, seed=seed, env=ENV)
        phases.append((result.phase, result.max_percentage))

    if scenario == "healthy":
        assert [p for p in phases if p[0] != "succeeded"] == []
    else:
        assert all(top <= 50 for _, top in phases)
        assert all(phase == "rolled-back" for phase, _ in phases)


def test_a_stage_is_judged_only_on_measurements_taken_after_it_began():
    # Calls take simulated time, so the last measurement of 10% is not stamped with the
    # instant 25% began; the first round at 25% has only its own points to go on.
    rounds = []

    def collect(event, state):
        event = event.to_record()
        if event["type"] == "analysis" and event["scope"] == "stage" and state.percentage == 25:
            rounds.append({v["check"]: v["reason"] for v in event["run"]["verdicts"]})

    simulate(BRAIN, "healthy", seed=0, env=ENV, on_event=collect)

    assert "30 vs 30 samples in 30m, needs 50 a side" in rounds[0]["latency-vs-legacy"]
    assert "60 vs 60 samples in 30m" in rounds[1]["latency-vs-legacy"]


def test_analyses_due_together_share_each_measurement():
    # The stage and background analyses both run every 5m from about the same instant;
    # calls take time, yet they keep to their schedule and measure together, so the
    # target gets one request burst per interval, not two drifting apart.
    seen = {"measured": 0, "stage": 0, "background": 0}

    def count(event, state):
        event = event.to_record()
        if event["type"] == "measured":
            seen["measured"] += 1
        elif event["type"] == "analysis":
            seen[event["scope"]] += 1

    simulate(BRAIN, "healthy", seed=3, env=ENV, on_event=count)

    assert seen["stage"] == seen["background"] == seen["measured"]


def test_a_plan_with_prometheus_metrics_is_refused_at_once_naming_them(rollout, tmp_path):
    plan = tmp_path / "prom.yaml"
    plan.write_text((PLANS / "brain-api-demo.yaml").read_text().replace(
        '  modern_error_rate:\n    http: {get: "/api/admin/ab-testing/results?window=5m"}\n'
        '    select: variants.modern.errorRate\n',
        "  modern_error_rate:\n    prometheus:\n      url: http://127.0.0.1:9\n"
        "      query: sum(rate(errors_total[5m]))\n"))

    result = rollout("simulate", str(plan), "--scenario", "healthy")

    assert result.code == 2
    assert ("metrics.modern_error_rate: a prometheus metric cannot be simulated; the "
            "in-process sandbox answers http metrics only") in result.err
    assert "404" not in result.out + result.err and result.out == ""

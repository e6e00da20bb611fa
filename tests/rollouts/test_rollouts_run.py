"""`rollout run --auto-approve` drives the demo plan against the sandbox to the end.

Plans are plans/brain-api-demo.yaml with its bakes set to 0s (conftest.derive_plan):
`analysed_plan` keeps the demo's analysis, so each traffic stage lasts until its checks
pass on the sandbox's metrics; `fast_plan` also leaves the analysis out. Every stage,
request, command, gate and rollback step is the demo's in both.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from rollout_cli.plan import load_plan
from rollout_cli.plan.fields import dump_model
from tests.rollouts.conftest import DEMO_PLAN, FLAG, ON_EVERY_STORE, Operator, Target, derive_plan

TEST_ID = "brain-api-modern-rollout"

# What the guide's phases 1-4 send to the admin API, in order.
EXPECTED_CHANGES = [
    ("POST", "/api/admin/dashboard/start", None),
    ("POST", "/api/admin/ab-testing/start", {
        "testId": TEST_ID, "name": "Brain API Modern Implementation Rollout",
        "rolloutPercentage": 10, "enabled": True, "maxErrorRate": 0.05,
        "minSuccessRate": 0.95, "maxResponseTime": 15000, "enableAutoRollback": True}),
    ("POST", "/api/admin/memory/start", None),
    ("POST", "/api/admin/ab-testing/update", {"rolloutPercentage": 10}),
    ("POST", "/api/admin/ab-testing/update", {"rolloutPercentage": 25}),
    ("POST", "/api/admin/ab-testing/update", {"rolloutPercentage": 50}),
    ("POST", "/api/admin/ab-testing/update", {"rolloutPercentage": 75}),
    ("POST", "/api/admin/feature-flags/enable", {"flag": FLAG, "value": True}),
    ("POST", "/api/admin/ab-testing/update", {"rolloutPercentage": 100}),
    ("POST", "/api/admin/ab-testing/stop", None),
    ("DELETE", f"/api/admin/feature-flags/{FLAG}", None),
    ("POST", "/api/admin/dashboard/update-baselines", {"testId": TEST_ID}),
]


def _dump(plan: Path) -> dict:
    return dump_model(load_plan(plan).plan)


def _without(plan: dict, *stage_keys: str) -> dict:
    return {**plan, "stages": [{k: v for k, v in stage.items() if k not in stage_keys}
                               for stage in plan["stages"]]}


def test_derived_plans_differ_from_the_demo_only_in_bakes_and_analysis(
        target: Target, fast_plan: Path, analysed_plan: Path):
    demo = _dump(DEMO_PLAN)
    analysed = _dump(analysed_plan)
    fast = _dump(fast_plan)

    assert _without(analysed, "bake") == _without(demo, "bake")
    baking = [s["name"] for s in demo["stages"] if s["bake"]]
    assert [s["bake"] for s in analysed["stages"] if s["name"] in baking] == ["0s"] * len(baking)
    assert (fast["analysis"], fast["background"]) == (None, None)
    assert _without({**fast, "analysis": None, "background": None}, "bake", "analysis") == \
        _without({**demo, "analysis": None, "background": None}, "bake", "analysis")


def test_derive_plan_sets_bakes_per_stage_and_adds_keys(tmp_path: Path, target: Target):
    plan = load_plan(derive_plan(tmp_path / "p.yaml", bakes={"canary-25": "1h"},
                                 extra={"canary-50": 'steps: [{run: [sleep, "0"]}]'},
                                 retry="{attempts: 1}")).plan
    stages = {s.name: s for s in plan.stages}

    assert stages["canary-25"].bake.min == 3600
    assert stages["full"].bake.min == 0
    assert len(stages["canary-50"].steps) == 1
    assert plan.target.retry.attempts == 1


@ON_EVERY_STORE
def test_run_auto_approve_succeeds_and_sends_the_guide_calls_in_order(
        operator: Operator, target: Target, analysed_plan: Path):
    result = operator("run", str(analysed_plan), "--auto-approve", "--output", "json")

    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["phase"] == "succeeded"
    assert summary["exit_code"] == 0
    assert target.changes() == EXPECTED_CHANGES
    assert target.outcome() == {"test": "stopped", "percentage": 100, "flags": {}}
    events = operator.events()
    assert events[-1]["type"] == "succeeded"
    approvals = [(e["name"], e["who"]) for e in events if e["type"] == "gate-approved"]
    assert approvals == [("canary-10", "auto-approve"), ("full", "auto-approve")]
    passed = [e["stage"] for e in events if e["type"] == "analysis"
              and e["scope"] == "stage" and e["run"]["passed"]]
    assert sorted(set(passed)) == [3, 4, 5, 6, 7]   # every traffic stage passed its checks


def test_run_text_output_ends_with_the_result_line(operator: Operator, target: Target,
                                                  fast_plan: Path):
    result = operator("run", str(fast_plan), "--auto-approve")

    assert result.code == 0, result.err
    lines = result.out.strip().splitlines()
    assert lines[-1].startswith("rollout brain-api-demo-")
    assert lines[-1].endswith(": succeeded -- rollout succeeded")
    assert any("stage canary-10 started (10% traffic)" in line for line in lines)
    assert any("gate auto-approved by auto-approve" in line for line in lines)


def test_a_failed_expectation_shows_what_the_target_answered(
        operator: Operator, target: Target, fast_plan: Path):
    assert operator("start", str(fast_plan)).code == 3          # at canary-10's gate
    # The A/B test is stopped behind the rollout's back: the next traffic call gets a 409.
    httpx.post(f"{target.url}/api/admin/ab-testing/emergency-stop", json={}).raise_for_status()

    advanced = operator("advance")
    [failed] = [e for e in operator.events() if e["type"] == "outcome" and not e["ok"]]
    report = operator("report").out

    assert failed["status"] == 409
    assert failed["error"].startswith("status 409, expected 200; the answer was: {")
    assert "start a new" in failed["error"] and len(failed["error"]) < 400
    assert "the answer was" in advanced.out + advanced.err
    assert "the answer was" in report

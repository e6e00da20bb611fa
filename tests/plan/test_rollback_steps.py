"""Rollback steps that work on their own, and steps that may fail without a rollback."""

from __future__ import annotations

import json
from pathlib import Path

PLAN = """\
version: 1
name: guarded
target: {base_url: "http://127.0.0.1:9"}
traffic: {request: POST /w, json: {p: "{{ percentage }}"}, idempotent: true}
stages:
  - name: prepare
    steps:
      - request: GET /strategy
        capture: {strategy_id: id}
      - request: GET /precondition
        on_failure: abort
  - {name: canary, percentage: 10, gate: manual}
rollback:
  - request: POST /strategies/{{ strategy_id }}/off
    idempotent: true
"""


def _warnings(rollout, plan: Path) -> list[dict]:
    result = rollout("validate", str(plan), "-o", "json")
    report = json.loads(result.out)[0]
    assert report["valid"] is True, report
    return report["warnings"]


def test_validate_warns_when_a_rollback_step_needs_a_value_only_stages_capture(
        rollout, tmp_path: Path):
    plan = tmp_path / "p.yaml"
    plan.write_text(PLAN)

    warnings = _warnings(rollout, plan)

    found = [w for w in warnings if "strategy_id" in w["message"]]
    assert len(found) == 1 and found[0]["line"] == 14
    assert "rollout rollback --plan" in found[0]["message"]
    assert "capture it inside the rollback" in found[0]["hint"]


def test_no_warning_when_the_rollback_captures_it_first(rollout, tmp_path: Path):
    plan = tmp_path / "p.yaml"
    plan.write_text(PLAN.replace("rollback:\n", "rollback:\n  - request: GET /strategy\n"
                                 "    capture: {strategy_id: id}\n"))

    assert not [w for w in _warnings(rollout, plan) if "strategy_id" in w["message"]]


def test_on_failure_is_for_stage_steps(rollout, tmp_path: Path):
    plan = tmp_path / "p.yaml"
    plan.write_text(PLAN.replace("    idempotent: true\n", "    idempotent: true\n"
                                 "    on_failure: abort\n"))

    result = rollout("validate", str(plan))

    assert result.code == 2
    assert "p.yaml:16:" in result.err and "on_failure" in result.err


def test_abort_after_traffic_moved_is_warned(rollout, tmp_path: Path):
    plan = tmp_path / "p.yaml"
    plan.write_text(PLAN.replace("  - {name: canary, percentage: 10, gate: manual}\n",
                                 "  - {name: canary, percentage: 10, gate: manual}\n"
                                 "  - name: check\n    steps:\n"
                                 "      - {request: GET /late, on_failure: abort}\n"))

    messages = [w["message"] for w in _warnings(rollout, plan)]

    assert any("traffic has moved" in m for m in messages), messages

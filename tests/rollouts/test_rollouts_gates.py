"""Manual gates: `start` stops at canary-10, `status` says so, `advance` moves on.

Plans are plans/brain-api-demo.yaml with only bake lengths changed (0s, or 1h where a
test needs a stage that is still baking) and, but for the last test, no analysis
(conftest.derive_plan).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.rollouts.conftest import ON_EVERY_STORE, Operator, Target, derive_plan, read_until


def _percentages(target: Target) -> list[int]:
    return [body["rolloutPercentage"] for method, path, body in target.changes()
            if path == "/api/admin/ab-testing/update"]


def test_start_stops_at_the_first_manual_gate(operator: Operator, target: Target,
                                             fast_plan: Path):
    started = operator("start", str(fast_plan))

    assert started.code == 3, started.err
    assert "waiting-gate" in started.out
    assert "rollout advance" in started.out
    assert _percentages(target) == [10]
    assert target.outcome()["percentage"] == 10

    text = operator("status")
    assert text.code == 3
    assert "phase     waiting-gate" in text.out
    assert "stage     canary-10 (4/9), traffic 10%, gate manual" in text.out

    status = json.loads(operator("status", "--output", "json").out)
    assert (status["phase"], status["stage"], status["percentage"], status["exit_code"]) == (
        "waiting-gate", "canary-10", 10, 3)
    assert status["captures"] == {"test_id": "brain-api-modern-rollout"}


@ON_EVERY_STORE
def test_advance_moves_gate_by_gate_to_the_end(operator: Operator, target: Target,
                                              fast_plan: Path):
    assert operator("start", str(fast_plan)).code == 3

    to_full = operator("advance", "--reason", "decision point 1: metrics look good")
    assert to_full.code == 3, to_full.err
    assert operator.status()["stage"] == "full"
    assert _percentages(target) == [10, 25, 50, 75, 100]

    done = operator("advance")
    assert done.code == 0, done.err
    assert operator.status()["phase"] == "succeeded"
    assert target.outcome() == {"test": "stopped", "percentage": 100, "flags": {}}
    approvals = [e for e in operator.events() if e["type"] == "gate-approved"]
    assert [(a["reason"], a["who"] != "auto-approve") for a in approvals] == [
        ("decision point 1: metrics look good", True), (None, True)]


@ON_EVERY_STORE
def test_advance_refuses_during_a_bake_unless_forced_with_a_reason(
        operator: Operator, target: Target, tmp_path: Path):
    plan = derive_plan(tmp_path / "baking.yaml", bakes={"canary-25": "1h"})
    assert operator("start", str(plan)).code == 3
    baking = operator("advance")
    assert baking.code == 3, baking.err          # canary-25 now bakes for an hour
    assert operator.status()["stage"] == "canary-25"

    refused = operator("advance")
    assert refused.code == 2
    assert "not waiting at a gate" in refused.err
    assert "--force --reason" in refused.err
    no_reason = operator("advance", "--force")
    assert no_reason.code == 2
    assert "--force needs --reason" in no_reason.err
    assert _percentages(target) == [10, 25]

    forced = operator("advance", "--force", "--reason", "load test already covered 25%")
    assert forced.code == 3, forced.err
    assert operator.status()["stage"] == "full"
    assert _percentages(target) == [10, 25, 50, 75, 100]
    history = json.loads(operator("history", "--output", "json").out)
    forced_events = [e for e in history["events"] if e["type"] == "gate-approved"
                     and e.get("forced")]
    assert len(forced_events) == 1
    assert forced_events[0]["reason"] == "load test already covered 25%"
    assert "@" in forced_events[0]["who"]
    text = operator("history")
    assert "gate forced by " in text.out
    assert ": load test already covered 25%" in text.out


def test_advance_full_promotes_through_every_remaining_stage(operator: Operator,
                                                             target: Target, tmp_path: Path):
    plan = derive_plan(tmp_path / "long.yaml", bake="1h")
    assert operator("start", str(plan)).code == 3   # validate's hour-long bake
    assert operator.status()["stage"] == "validate"

    promoted = operator("advance", "--full", "--reason", "hotfix, skip the canaries")
    assert promoted.code == 0, promoted.out + promoted.err
    assert operator.status()["phase"] == "succeeded"
    assert _percentages(target) == [10, 25, 50, 75, 100]
    assert target.outcome() == {"test": "stopped", "percentage": 100, "flags": {}}
    assert [e["type"] for e in operator.events()].count("gate-waiting") == 0


def test_advance_full_at_a_gate_promotes_too(operator: Operator, target: Target,
                                             tmp_path: Path):
    plan = derive_plan(tmp_path / "long.yaml", bake="1h", bakes={"canary-10": "0s"})
    assert operator("start", str(plan)).code == 3   # validate bakes for an hour
    assert operator("advance", "--force", "--reason", "skip validation bake").code == 3
    assert operator.status()["phase"] == "waiting-gate"

    promoted = operator("advance", "--full")
    assert promoted.code == 0, promoted.out + promoted.err
    assert operator.status()["phase"] == "succeeded"
    assert _percentages(target) == [10, 25, 50, 75, 100]


def test_with_analysis_the_gate_waits_until_the_checks_pass(operator: Operator, target: Target,
                                                            analysed_plan: Path):
    follower = operator.spawn("start", str(analysed_plan), "--follow")
    try:   # an operator watching in one terminal; the gate waits for another
        read_until(follower, r"stage canary-10 waits at its manual gate$", timeout=60)
    finally:
        follower.send_signal(signal.SIGTERM)
    assert operator.finish(follower).code == 143     # 128 + SIGTERM

    status = operator.status()
    assert (status["phase"], status["stage"], status["exit_code"]) == (
        "waiting-gate", "canary-10", 3)
    assert status["analysis"]["stage"]["passed"] is True
    verdicts = {row["check"]: row["verdict"] for row in status["checks"]
                if row["scope"] == "stage"}
    assert verdicts == {"success-rate": "pass", "latency-vs-legacy": "pass",
                        "errors-vs-legacy": "pass", "error-rate": "pass",
                        "critical-alerts": "pass"}
    assert "stage analysis:" in operator("status").out

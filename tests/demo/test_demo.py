"""`rollout demo`, the README's main command: sandbox, real HTTP, summary."""

from __future__ import annotations

import json


def test_demo_of_a_degradation_ends_rolled_back_with_the_reason(rollout):
    result = rollout("demo", "--scenario", "degrade-at-50", "--seed", "1", "--output", "json")

    summary = json.loads(result.out)
    assert (result.code, summary["phase"]) == (1, "rolled-back")
    assert "latency-vs-legacy" in summary["reason"]
    assert [s["stage"] for s in summary["stages"]][-2:] == ["canary-10", "canary-25"]
    assert summary["decisions"][-1].startswith("rolled-back:")
    assert "rollback-started" in result.err and "feature-flags/disable" in result.err

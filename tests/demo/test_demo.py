"""`rollout demo`, the README's main command: sandbox, real HTTP, summary."""

from __future__ import annotations

import json


def test_demo_of_a_degradation_ends_rolled_back_with_the_reason(rollout):
    result = rollout("demo", "--scenario", "degrade-at-50", "--seed", "1", "--speed", "2",
                     "--output", "json")

    summary = json.loads(result.out)
    assert (result.code, summary["phase"]) == (1, "rolled-back")
    assert "latency-vs-legacy" in summary["reason"]
    assert [s["stage"] for s in summary["stages"]][-2:] == ["canary-10", "canary-25"]
    assert summary["decisions"][-1].startswith("rolled-back:")
    assert "rollback-started" in result.err and "feature-flags/disable" in result.err


def test_jsonl_stream_of_a_demo_tells_the_whole_story(rollout):
    result = rollout("demo", "--scenario", "degrade-at-50", "--seed", "2", "--output", "jsonl")

    lines = [json.loads(line) for line in result.out.splitlines()]
    events = [line for line in lines if "seq" in line]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    started = [e["name"] for e in events if e["type"] == "stage-started"]
    assert started == ["deploy", "initialize", "validate", "canary-10", "canary-25",
                       "canary-50"]
    assert [e["type"] for e in events][-1] == "rolled-back"
    assert [e["type"] for e in events].count("rollback-started") == 1
    summary = lines[-1]
    assert (summary["type"], summary["phase"]) == ("summary", "rolled-back")
    assert result.code == 1

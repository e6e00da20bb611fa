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


def test_report_and_history_right_after_the_demo_find_its_rollout(rollout, here):
    demo = rollout("demo", "--speed", "20")

    assert demo.code == 0, demo.err
    # Plain lines without the noise: dry-run checks when their verdict changes, rounds
    # that repeat the last one counted.
    dry = [line for line in demo.out.splitlines() if "(dry run)" in line]
    assert 3 <= len(dry) <= 6, dry
    assert "background analysis: the same ×" in demo.out  # noqa: RUF001
    summary = demo.out.rstrip().splitlines()
    [rollout_id] = [line.split()[2] for line in summary if line.startswith("  rollout report ")]
    assert summary[-2:] == [
        f"  rollout report {rollout_id} --output html --out report.html",
        f"  rollout history {rollout_id}"]
    assert (here / ".rollout").is_dir()
    for command in summary[-2:]:
        result = rollout(*command.split()[1:])
        assert result.code == 0, result.err
    assert (here / "report.html").read_text().count(rollout_id) >= 1
    assert "succeeded" in rollout("history", rollout_id).out


def test_the_summary_repeats_a_state_location_given_on_the_command_line(rollout, tmp_path):
    state = tmp_path / "demo state"

    demo = rollout("demo", "--speed", "20", "--state", str(state))

    assert demo.code == 0, demo.err
    last = demo.out.rstrip().splitlines()[-1]
    assert last.endswith(f" --state '{state}'")
    assert rollout(*last.split()[1:3], "--state", str(state)).code == 0

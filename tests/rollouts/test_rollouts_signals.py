"""A following process stopped by SIGTERM (a CI job cancelled) or Ctrl-C, with machine
output: the last line on stdout is still the result, saying it was interrupted, with the
exit code (128 + the signal's number) and the command that resumes it.

Each process is signalled once it has journaled a known event, read from its own output.
Plans are plans/brain-api-demo.yaml with 0s bakes (canary-25's 1h where the process must
still be baking when it is signalled) and no analysis (conftest.derive_plan).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.rollouts.conftest import Operator, Target, derive_plan, read_until


@pytest.mark.parametrize("command", [["run"], ["start", "--follow"]], ids=["run", "start"])
def test_sigterm_with_jsonl_ends_the_stream_with_the_interrupted_result(
        operator: Operator, target: Target, fast_plan: Path, command: list[str]):
    follower = operator.spawn(command[0], str(fast_plan), *command[1:], "--output", "jsonl")
    try:
        streamed = read_until(follower, r'"type": "gate-waiting"', timeout=60)
    finally:
        follower.send_signal(signal.SIGTERM)
    stopped = operator.finish(follower)

    assert stopped.code == 143, stopped.err
    lines = [json.loads(line) for line in (streamed + stopped.out).splitlines()]  # all JSON
    *events, result = lines
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    [rollout_id] = operator.rollout_ids()
    assert events[-1]["type"] == "note" and "interrupted by SIGTERM" in events[-1]["text"]
    assert {key: result[key] for key in ("type", "rollout", "phase", "stage", "stage_index",
                                         "interrupted", "exit_code")} == {
        "type": "result", "rollout": rollout_id, "phase": "waiting-gate", "stage": "canary-10",
        "stage_index": 3, "interrupted": "SIGTERM", "exit_code": 143}
    assert f"`rollout resume {rollout_id} --follow`" in result["next"]
    # The human progress went to stderr, all of it.
    assert "stage canary-10 started (10% traffic)" in stopped.err
    assert f"interrupted (SIGTERM): `rollout resume {rollout_id} --follow`" in stopped.err


def test_ctrl_c_with_json_prints_the_interrupted_result_alone(operator: Operator,
                                                              target: Target, tmp_path: Path):
    plan = derive_plan(tmp_path / "baking.yaml", bakes={"canary-25": "1h"})
    follower = operator.spawn("run", str(plan), "--auto-approve", "--output", "json")
    try:   # with json, stdout holds only the result: the progress is read from stderr
        read_until(follower, r"stage canary-25 started", timeout=60, stream="stderr")
    finally:
        follower.send_signal(signal.SIGINT)
    stopped = operator.finish(follower)

    assert stopped.code == 130, stopped.err
    result = json.loads(stopped.out)
    [rollout_id] = operator.rollout_ids()
    assert {key: result[key] for key in ("rollout", "phase", "stage", "stage_index",
                                         "interrupted", "exit_code")} == {
        "rollout": rollout_id, "phase": "running", "stage": "canary-25", "stage_index": 4,
        "interrupted": "SIGINT", "exit_code": 130}
    assert f"`rollout resume {rollout_id} --follow --auto-approve`" in result["next"]
    assert "interrupted by SIGINT" in operator.events()[-1]["text"]

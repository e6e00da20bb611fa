"""`rollout advance --stage NAME`: the operator names the gate they mean, so an advance
that reaches a rollout which has moved on since they looked does nothing.

Plans are plans/brain-api-demo.yaml with 0s bakes, no analysis and a 60s request timeout
(a held call must not time out); stages: deploy, initialize, validate, canary-10 (3),
canary-25, canary-50, canary-75, full (7, a manual gate), legacy-cleanup.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from rollout_cli.engine import RolloutState
from rollout_cli.plan import load_plan
from rollout_cli.render.live_view import render
from tests.rollouts.conftest import ON_EVERY_STORE, Operator, Target, derive_plan, read_until


def _percentages(target: Target) -> list[int]:
    return [body["rolloutPercentage"] for _, path, body in target.changes()
            if path == "/api/admin/ab-testing/update"]


@ON_EVERY_STORE
def test_two_advances_of_the_same_gate_open_it_once(operator: Operator, held_target: Target,
                                                    tmp_path: Path):
    # The reported race: two operators both mean canary-10's gate; the first one's
    # advance is still sending canary-25's calls when the second one's arrives.
    plan = derive_plan(tmp_path / "plan.yaml", timeout="60s")
    assert operator("start", str(plan)).code == 3
    assert held_target.hold is not None
    held_target.hold.arm("/api/admin/ab-testing/update")          # 25%, by the first
    first = operator.spawn("advance", "--stage", "canary-10", "--reason", "first")
    try:
        held_target.hold.wait_arrived()
        second = operator.spawn("advance", "--stage", "canary-10", "--reason", "second",
                                "--lock-timeout", "60s")
        read_until(second, r"waiting for the lock of rollout", timeout=30, stream="stderr")
    finally:
        held_target.hold.release()
    opened, refused = operator.finish(first), operator.finish(second)

    assert opened.code == 3, opened.err                 # on to full's gate
    assert refused.code == 3, refused.err
    assert "is at stage full (waiting-gate), not at stage canary-10; nothing was done" in \
        refused.err
    assert _percentages(held_target) == [10, 25, 50, 75, 100]     # not 10, 25, 50, ...
    approvals = [e for e in operator.events() if e["type"] == "gate-approved"]
    assert [(a["stage"], a["reason"]) for a in approvals] == [(3, "first")]


def test_advance_stage_takes_a_name_or_an_index_and_refuses_an_unknown_one(
        operator: Operator, target: Target, fast_plan: Path):
    assert operator("start", str(fast_plan)).code == 3          # canary-10's gate

    unknown = operator("advance", "--stage", "canary-99")
    assert unknown.code == 2
    assert "no stage canary-99" in unknown.err and "canary-10, canary-25" in unknown.err
    elsewhere = operator("advance", "--stage", "full")
    assert elsewhere.code == 3
    assert "is at stage canary-10 (waiting-gate), not at stage full" in elsewhere.err
    assert _percentages(target) == [10]

    assert operator("advance", "--stage", "canary-10").code == 3
    done = operator("advance", "--stage", "7", "--output", "json")   # full, by its index
    assert done.code == 0, done.err
    assert json.loads(done.out)["phase"] == "succeeded"
    ended = operator("advance", *operator.rollout_ids(), "--stage", "full")
    assert ended.code == 3
    assert "is at stage legacy-cleanup (succeeded): it has ended; nothing was done" in ended.err


def test_next_hints_name_the_stage_whose_gate_is_waiting(operator: Operator, target: Target,
                                                         fast_plan: Path):
    started = operator("start", str(fast_plan), "--output", "json")
    rollout_id = json.loads(started.out)["rollout"]
    hint = f"rollout advance {rollout_id} --stage canary-10"

    assert hint in json.loads(started.out)["next"]
    assert f"next      waiting at a manual gate: `{hint}`" in operator("status").out
    advanced = operator("advance", "--stage", "canary-10", "--output", "json")
    assert f"rollout advance {rollout_id} --stage full" in json.loads(advanced.out)["next"]
    paused = operator("pause", "--reason", "look first", "--output", "json")
    assert f"rollout advance {rollout_id} --stage full" in json.loads(paused.out)["next"]

    plan = load_plan(fast_plan, {"BRAIN_API_URL": target.url}).plan
    frame = render(plan, RolloutState(id="r-1", plan=plan.name, phase="waiting-gate",
                                      stage=3), [], now=0.0)
    console = Console(record=True, width=200, force_terminal=False, color_system=None)
    console.print(frame)
    # The live view puts the command on a line of its own, whole.
    lines = console.export_text().splitlines()
    [at] = [i for i, line in enumerate(lines) if "next: waiting at a manual gate:" in line]
    assert lines[at + 1].startswith("│   rollout advance r-1 --stage canary-10 ")

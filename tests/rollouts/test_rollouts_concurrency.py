"""Two operators at once: the rollout's lock lets exactly one act, the other is told who.

The plan is plans/brain-api-demo.yaml with 0s bakes, no analysis, and one addition: a
2-second local step at the start of canary-25 (the stage after canary-10's gate), so the
`advance` that wins holds the lock long enough for the other to run into it.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.rollouts.conftest import Operator, Target, derive_plan

SLOW_STEP = 'steps: [{name: slow step, run: [sleep, "2"], timeout: 10s}]'
LOCK_RECORD = ("Lock Info:", "ID:", "Who:", "Operation:", "Created:", "Pid:")


def test_two_advances_at_a_gate_exactly_one_proceeds(operator: Operator, target: Target,
                                                    tmp_path: Path):
    plan = derive_plan(tmp_path / "slow-after-gate.yaml", extra={"canary-25": SLOW_STEP})
    assert operator("start", str(plan)).code == 3

    first = operator.spawn("advance", "--reason", "first operator")
    second = operator.spawn("advance", "--reason", "second operator")
    results = sorted([operator.finish(first), operator.finish(second)], key=lambda r: r.code)

    winner, loser = results
    assert (winner.code, loser.code) == (3, 4), [r.err for r in results]
    assert operator.status()["stage"] == "full"        # the winner went on to the next gate
    for part in LOCK_RECORD:
        assert part in loser.err
    assert "Operation: advance" in loser.err
    assert "STALE" not in loser.err
    # A live holder: wait for it, never unlock it.
    assert "still running: wait for it to finish, or run again with --lock-timeout" in loser.err
    assert "rollout unlock" not in loser.err
    approvals = [e for e in operator.events() if e["type"] == "gate-approved"]
    assert len(approvals) == 1
    updates = [body for method, path, body in target.changes()
               if path == "/api/admin/ab-testing/update"]
    assert updates == [{"rolloutPercentage": p} for p in (10, 25, 50, 75, 100)]


def test_a_second_start_of_the_same_plan_is_refused(operator: Operator, target: Target,
                                                   fast_plan: Path):
    first = operator("start", str(fast_plan))
    assert first.code == 3
    [active] = operator.rollout_ids()

    second = operator("start", str(fast_plan))

    assert second.code == 2
    assert f"already has an active rollout, {active}" in second.err
    assert operator.rollout_ids() == [active]           # the refused start left nothing
    listed = json.loads(operator("list", "--output", "json").out)
    assert [(r["rollout"], r["phase"]) for r in listed] == [(active, "waiting-gate")]


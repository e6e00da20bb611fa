"""Two operators at once: the rollout's lock lets exactly one act, the other is told who.

The plan is plans/brain-api-demo.yaml with 0s bakes, no analysis, and one addition: a
2-second local step at the start of canary-25 (the stage after canary-10's gate), so the
`advance` that wins holds the lock long enough for the other to run into it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.rollouts.conftest import (
    EMERGENCY_SEQUENCE,
    ON_EVERY_STORE,
    Operator,
    Target,
    derive_plan,
    read_until,
)

SLOW_STEP = 'steps: [{name: slow step, run: [sleep, "2"], timeout: 10s}]'
LOCK_RECORD = ("Lock Info:", "ID:", "Who:", "Operation:", "Created:", "Pid:")


@ON_EVERY_STORE
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


@ON_EVERY_STORE
def test_a_second_start_of_a_plan_being_followed_is_refused_with_the_claim(
        operator: Operator, target: Target, fast_plan: Path):
    follower = operator.spawn("run", str(fast_plan))
    read_until(follower, r"stage canary-10 waits at its manual gate$", timeout=60)
    [active] = operator.rollout_ids()

    try:
        second = operator.process("start", str(fast_plan))
    finally:
        follower.terminate()
    operator.finish(follower)

    assert second.code == 4, second.err
    assert f"plan brain-api-demo already has an active rollout, {active}" in second.err
    for part in ("Claim Info:", f"Rollout:   {active}", "Who:       ", "Since:     ",
                 "Lock:      "):
        assert part in second.err
    assert f"`rollout rollback {active}`" in second.err
    assert operator.rollout_ids() == [active]           # the refused start left nothing
    listed = json.loads(operator("list", "--output", "json").out)
    assert [(r["rollout"], r["phase"]) for r in listed] == [(active, "waiting-gate")]


@ON_EVERY_STORE
@pytest.mark.parametrize("form", ["--plan", "rollout id"])
def test_two_rollbacks_at_once_send_the_alert_once(operator: Operator, held_target: Target,
                                                   tmp_path: Path, form: str):
    # The second one waits for the first one's lock, then reports its rollback instead of
    # sending the steps (and the non-idempotent alert) again.
    plan = derive_plan(tmp_path / "plan.yaml", timeout="60s")
    if form == "--plan":
        which, subject = ["--plan", str(plan)], "plan brain-api-demo"
    else:
        assert operator("start", str(plan)).code == 3
        which = operator.rollout_ids()
        subject = f"rollout {which[0]}"
    before = len(held_target.changes())
    assert held_target.hold is not None
    held_target.hold.arm("/api/admin/feature-flags/disable")
    first = operator.spawn("rollback", *which, "--yes", "--reason", "on-call 1")
    try:
        held_target.hold.wait_arrived()             # the first holds the lock
        refused = operator.process("rollback", *which, "--yes", "--lock-timeout", "0s")
        second = operator.spawn("rollback", *which, "--yes", "--reason",
                                "on-call 2")        # waits, up to rollback's default 30s
        read_until(second, rf"waiting for the lock of {subject}: held by rollback "
                   rf"\(pid {first.pid}", timeout=30, stream="stderr")
    finally:
        held_target.hold.release()
    done, reported = operator.finish(first), operator.finish(second)

    assert refused.code == 4, refused.err
    assert f"{subject} is locked by another command." in refused.err
    assert "Operation: rollback" in refused.err and f"Pid:       {first.pid}" in refused.err
    assert "rollout unlock" not in refused.err
    assert done.code == 1, done.err
    assert reported.code == 1, reported.err
    [rollout_id] = operator.rollout_ids()                  # the second made no rollout
    assert f"rollout {rollout_id}: rolled-back -- rolled back: on-call 1" in reported.out
    assert "rolled back while this command waited for the lock; nothing was sent again" in \
        reported.out
    assert held_target.changes()[before:] == EMERGENCY_SEQUENCE     # the alert went once
    assert [e["type"] for e in operator.events()].count("rollback-started") == 1

"""A following process (`run`, `start --follow`, `resume --follow`) and an operator acting
from another terminal: the follower waits for the operator's lock, then carries on from
what the operator did, or ends with its exit code.

The race is made, not waited for: the operator's command is kept inside one of its calls
by the target (conftest.Hold), so it holds the rollout's lock for as long as the test
wants, or the test holds the lock itself through the store's API. The follower says on
stderr that it waits; only then is the lock let go.

Plans are plans/brain-api-demo.yaml with 0s bakes (1h where a follower must be baking),
no analysis, and a 60s request timeout, so that a held call never times out.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from rollout_cli import operations
from rollout_cli.errors import LockedError
from rollout_cli.reconcile import loop
from tests.rollouts.conftest import (
    EMERGENCY_SEQUENCE,
    ON_EVERY_STORE,
    Operator,
    Target,
    derive_plan,
    read_until,
)

WAITING = r"waiting for the lock of rollout \S+: held by (\w+) \(pid (\d+)"
AT_THE_GATE = r"stage canary-10 waits at its manual gate$"


def _percentages(target: Target) -> list[int]:
    return [body["rolloutPercentage"] for _, path, body in target.changes()
            if path == "/api/admin/ab-testing/update"]


@ON_EVERY_STORE
def test_a_follower_waits_out_an_operators_rollback_and_ends_rolled_back(
        operator: Operator, held_target: Target, tmp_path: Path):
    plan = derive_plan(tmp_path / "plan.yaml", timeout="60s")
    follower = operator.spawn("run", str(plan))
    read_until(follower, AT_THE_GATE, timeout=60)
    before = len(held_target.changes())
    assert held_target.hold is not None
    held_target.hold.arm("/api/admin/feature-flags/disable")      # the first rollback call
    rollback = operator.spawn("rollback", "--yes", "--reason", "error rate above 10%")
    try:
        held_target.hold.wait_arrived()     # the operator is inside its rollback, locked
        waiting = read_until(follower, WAITING, timeout=30, stream="stderr")
    finally:
        held_target.hold.release()
    rolled_back = operator.finish(rollback)
    followed = operator.finish(follower)

    assert f"held by rollback (pid {rollback.pid}" in waiting
    assert rolled_back.code == 1, rolled_back.err
    assert followed.code == 1, followed.err
    assert followed.out.strip().splitlines()[-1].endswith(
        ": rolled-back -- rolled back: error rate above 10%")
    assert "rollout unlock" not in followed.err
    assert held_target.changes()[before:] == EMERGENCY_SEQUENCE     # sent once, by the operator


@ON_EVERY_STORE
def test_a_follower_waits_out_an_operators_advance_and_carries_on(
        operator: Operator, held_target: Target, tmp_path: Path):
    plan = derive_plan(tmp_path / "plan.yaml", timeout="60s")
    follower = operator.spawn("run", str(plan))
    read_until(follower, AT_THE_GATE, timeout=60)
    assert held_target.hold is not None
    held_target.hold.arm("/api/admin/ab-testing/update")      # 25%, sent by the advance
    advance = operator.spawn("advance", "--reason", "decision point 1")
    try:
        held_target.hold.wait_arrived()
        waiting = read_until(follower, WAITING, timeout=30, stream="stderr")
    finally:
        held_target.hold.release()
    advanced = operator.finish(advance)

    assert f"held by advance (pid {advance.pid}" in waiting
    assert advanced.code == 3, advanced.err              # at full's gate
    assert follower.poll() is None                       # still following, at that gate
    assert operator("advance", "--lock-timeout", "30s").code == 0
    followed = operator.finish(follower)
    assert followed.code == 0, followed.err
    assert followed.out.strip().splitlines()[-1].endswith(": succeeded -- rollout succeeded")
    assert _percentages(held_target) == [10, 25, 50, 75, 100]


def test_a_ci_follower_waits_out_an_operators_pause_and_ends_paused(
        operator: Operator, target: Target, tmp_path: Path):
    plan = derive_plan(tmp_path / "plan.yaml", bakes={"canary-25": "1h"})
    follower = operator.spawn("run", str(plan), "--auto-approve", "--output", "jsonl")
    started = read_until(follower, r'"type": "created"', timeout=60)
    rollout_id = operator.rollout_ids()[0]
    read_until(follower, r'"type": "stage-baking"', timeout=60)      # validate (0s)
    read_until(follower, r'"name": "canary-25"', timeout=60)         # baking for an hour
    # The operator's pause holds the rollout's lock while the follower ticks.
    with operator.store.open(rollout_id).lock("pause", timeout=30):
        waiting = read_until(follower, WAITING, timeout=30, stream="stderr")
    paused = operator("pause", "--reason", "checking a dashboard", "--lock-timeout", "30s")
    followed = operator.finish(follower)

    assert '"type": "created"' in started
    assert "held by pause (pid " in waiting
    assert paused.code == 3, paused.err
    assert followed.code == 3, followed.err
    result = json.loads(followed.out.strip().splitlines()[-1])
    assert (result["type"], result["phase"], result["pause_reason"]) == (
        "result", "paused", "checking a dashboard")
    assert _percentages(target) == [10, 25]


@pytest.mark.parametrize("holder", ["live", "stale"])
def test_a_follower_waits_a_bounded_time_for_a_live_holder_and_takes_over_a_stale_one(
        operator: Operator, target: Target, fast_plan: Path, holder: str,
        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(loop, "FOLLOWER_LOCK_WAIT", 120.0)  # half an hour: 7200 polls, 6 s
    assert operator("start", str(fast_plan)).code == 3           # at canary-10's gate
    [rollout_id] = operator.rollout_ids()
    lock = operator.store.open(rollout_id).lock("advance")
    clock = {"now": 2_000_000_000.0}
    naps: list[float] = []
    told: list[tuple[str, dict]] = []

    def sleep(seconds: float) -> None:      # virtual time: nobody waits half an hour
        naps.append(seconds)
        clock["now"] += seconds
        if clock["now"] > 2_000_000_003.0 and holder == "stale":
            raise Stopped                    # it carries on at the gate: stop following
        if lock.record is None:              # the follower's first nap: an operator acts
            lock.acquire()
            if holder == "stale":            # ...and dies holding the lock
                record = json.loads(lock.path.read_text())
                lock.path.write_text(json.dumps({**record, "pid": _dead_pid()}))

    ctx = operations.Context(operator.store, now=lambda: clock["now"], sleep=sleep,
                             on_lock_wait=lambda subject, record: told.append((subject, record)))
    try:
        with pytest.raises(LockedError if holder == "live" else Stopped) as refused:
            operations.resume(ctx, None, follow=True)
    finally:
        if holder == "live":
            operator.store.unlock(str(lock.id))

    if holder == "live":
        assert [subject for subject, _ in told] == [f"rollout {rollout_id}"]
        assert told[0][1]["id"] == lock.id
        # its nap, a look at the journal every 250 ms; then the wait for the lock
        assert naps[:4] == [pytest.approx(0.25)] * 4
        assert sum(naps[4:]) == pytest.approx(120.0)
        assert "(gave up after 120s)" in str(refused.value)
        assert "rollout unlock" not in str(refused.value)
    else:                                    # no waiting for a process that is gone
        assert told == []
        notes = [e["text"] for e in operator.events() if e["type"] == "note"]
        assert any(text.startswith(f"took over the stale lock {lock.id}") for text in notes)
    assert operator.status()["phase"] == "waiting-gate"


class Stopped(Exception):
    pass


def _dead_pid() -> int:
    finished = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True,
                              check=True)
    return int(finished.stdout)

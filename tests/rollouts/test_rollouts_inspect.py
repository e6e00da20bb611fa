"""Looking at rollouts (`list`, `history`) and the lock of a process that died: taken over
on this host, released with `unlock` when it was taken on another.

Plans are plans/brain-api-demo.yaml with 0s bakes and no analysis (conftest.derive_plan).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.rollouts.conftest import ON_EVERY_STORE, Operator, Target, killed_after, unlock_hint


@ON_EVERY_STORE
def test_list_shows_every_rollout_oldest_first(operator: Operator, target: Target,
                                               fast_plan: Path):
    assert operator("list").out.strip() == "no rollouts yet"
    assert operator("run", str(fast_plan), "--auto-approve").code == 0
    assert operator("start", str(fast_plan)).code == 3
    done, active = operator.rollout_ids()

    text = operator("list")
    listed = json.loads(operator("list", "--output", "json").out)

    assert text.code == 0
    assert [line.split()[:2] for line in text.out.strip().splitlines()] == [
        [done, "succeeded"], [active, "waiting-gate"]]
    assert [(r["rollout"], r["plan"], r["phase"]) for r in listed] == [
        (done, "brain-api-demo", "succeeded"), (active, "brain-api-demo", "waiting-gate")]
    assert all("@" in r["created_by"] and r["created"] for r in listed)


@ON_EVERY_STORE
def test_history_lists_every_journal_event(operator: Operator, target: Target,
                                           fast_plan: Path):
    assert operator("start", str(fast_plan)).code == 3
    assert operator("rollback", "--yes", "--reason", "drill").code == 1
    journal = operator.events()

    text = operator("history")
    data = json.loads(operator("history", "--output", "json").out)

    assert text.code == 0
    assert data["rollout"] == operator.rollout_ids()[0]
    assert data["plan"] == "brain-api-demo"
    assert data["events"] == journal
    lines = text.out.strip().splitlines()
    assert len(lines) == len(journal)
    assert [int(line.split()[0]) for line in lines] == [e["seq"] for e in journal]
    assert "rollout created from" in lines[0]
    assert lines[-1].endswith("rolled-back: drill")
    assert any("gate" in line and "manual gate" in line for line in lines)


@ON_EVERY_STORE
def test_a_dead_commands_lock_is_taken_over_by_the_next_one(operator: Operator,
                                                            target: Target, fast_plan: Path):
    # Killed right after its 4th event (the outcome of the deploy stage's first command).
    killed = operator.process("start", str(fast_plan), env=killed_after(4))
    assert killed.code == -9
    [stale] = operator.store.held_locks()

    finished = operator("resume", "--follow", "--auto-approve")

    assert finished.code == 0, finished.out + finished.err
    assert operator.status()["phase"] == "succeeded"
    taken = (f"took over the stale lock {stale['id']} of {stale['who']} pid {stale['pid']}"
             f" (start, created {stale['created']})")
    assert [e["text"] for e in operator.events() if e["type"] == "note"] == [taken]
    assert taken in operator("history").out


def test_a_lock_from_another_host_waits_for_unlock(operator: Operator, target: Target,
                                                   fast_plan: Path):
    killed = operator.process("start", str(fast_plan), env=killed_after(4))
    assert killed.code == -9
    fast_plan.write_text(fast_plan.read_text() + "# edited while the lock was held\n")
    # The same record, as a command on another machine sharing the state dir leaves it.
    [lock_file] = operator.state_dir.glob("rollouts/*/lock.json")
    lock_file.write_text(json.dumps({**json.loads(lock_file.read_text()),
                                     "who": "ops@bastion-2"}))

    refused = operator("advance")                # the lock is what blocks first
    assert refused.code == 4
    assert "locked by a command on another host (bastion-2)" in refused.err
    assert re.search(r"Whether pid \d+ still runs on bastion-2 cannot be seen", refused.err)
    assert "Operation: start" in refused.err
    lock_id = unlock_hint(refused.err)

    unlocked = operator("unlock", lock_id[:8])          # a unique prefix is enough
    assert unlocked.code == 0, unlocked.err
    assert unlocked.out.startswith(f"released lock {lock_id} (start by ops@bastion-2)")
    again = operator("unlock", lock_id)
    assert again.code == 2
    assert f"no lock with id {lock_id!r}" in again.err

    changed = operator("resume", "--follow", "--auto-approve")
    assert changed.code == 2
    assert "--accept-plan-change" in changed.err
    finished = operator("resume", "--follow", "--auto-approve", "--accept-plan-change")
    assert finished.code == 0, finished.out + finished.err
    assert operator.status()["phase"] == "succeeded"


def test_status_of_a_finished_rollout_stops_its_clocks_and_claims_no_traffic(
        operator: Operator, target: Target, fast_plan: Path):
    assert operator("start", str(fast_plan)).code == 3
    waiting = operator.status()
    assert (waiting["stage"], waiting["percentage"], waiting["bake_left"]) == (
        "canary-10", 10, 0)
    assert operator("rollback", "--yes", "--reason", "drill").code == 1
    journal = operator.events()
    [started] = [e["time"] for e in journal if e["type"] == "stage-started"
                 and e["name"] == "canary-10"]

    ended = operator.status()
    text = operator("status").out

    assert ended["time_in_stage"] == journal[-1]["time"] - started
    assert ended["bake_left"] is None
    assert (ended["percentage"], ended["rolled_back_from"]) == (None, 10)
    assert "traffic rolled back from 10%" in text
    assert "bake left" not in text


def test_unlock_by_a_prefix_of_several_locks_names_them_and_releases_none(
        operator: Operator, target: Target, fast_plan: Path):
    assert operator("start", str(fast_plan)).code == 3
    [rollout_id] = operator.rollout_ids()
    operator.store.open(rollout_id).lock("advance").acquire()
    operator.store.lock_plan("another-plan", "rollback").acquire()
    # Left by processes on another host, with ids that happen to begin alike.
    files = sorted(operator.state_dir.rglob("*.json"), key=str)
    files = [f for f in files if json.loads(f.read_text()).get("pid")]
    held = ["feed0001-0000-4000-8000-000000000001", "feed0002-0000-4000-8000-000000000002"]
    for lock_file, lock_id in zip(files, held, strict=True):
        lock_file.write_text(json.dumps({**json.loads(lock_file.read_text()), "id": lock_id}))

    refused = operator("unlock", "feed")
    released = operator("unlock", "feed0002")

    assert refused.code == 2
    assert f"'feed' begins 2 lock ids: {held[0]}, {held[1]}; give more of it" in refused.err
    assert released.code == 0 and released.out.startswith(f"released lock {held[1]}")
    assert [record["id"] for record in operator.store.held_locks()] == [held[0]]

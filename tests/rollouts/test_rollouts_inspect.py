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

    unlocked = operator("unlock", lock_id)
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

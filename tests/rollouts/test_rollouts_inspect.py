"""Looking at rollouts (`list`, `history`) and freeing the lock of a process that died.

Plans are plans/brain-api-demo.yaml with 0s bakes and no analysis (conftest.derive_plan).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.rollouts.conftest import Operator, Target, killed_after, unlock_hint


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


def test_a_dead_holders_lock_is_stale_and_unlock_frees_it(operator: Operator, target: Target,
                                                          fast_plan: Path):
    # Killed right after its 4th event (the outcome of the deploy stage's first command).
    killed = operator.process("start", str(fast_plan), env=killed_after(4))
    assert killed.code == -9
    fast_plan.write_text(fast_plan.read_text() + "# edited while the lock was held\n")

    refused = operator("advance")                # the lock is what blocks first
    assert refused.code == 4
    assert "STALE" in refused.err
    assert re.search(r"pid \d+ no longer runs", refused.err)
    assert "Operation: start" in refused.err
    lock_id = unlock_hint(refused.err)

    unlocked = operator("unlock", lock_id)
    assert unlocked.code == 0, unlocked.err
    assert unlocked.out.startswith(f"released lock {lock_id} (start by ")
    again = operator("unlock", lock_id)
    assert again.code == 2
    assert f"no lock with id {lock_id!r}" in again.err

    changed = operator("resume", "--follow", "--auto-approve")
    assert changed.code == 2
    assert "--accept-plan-change" in changed.err
    finished = operator("resume", "--follow", "--auto-approve", "--accept-plan-change")
    assert finished.code == 0, finished.out + finished.err
    assert operator.status()["phase"] == "succeeded"

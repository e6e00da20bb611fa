"""`rollout repair`: a journal line cut short by a crash, repaired through the CLI.

The crash is real: `rollout run` SIGKILLed halfway through writing a journal line
(killpoints.py's TEAR_APPEND). Plans are plans/brain-api-demo.yaml with 0s bakes and no
analysis (conftest.derive_plan); its third event is the intent of the deploy stage's first
command, so a rollout whose third line is cut short never ran that command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.rollouts import killpoints
from tests.rollouts.conftest import Operator, Target

TORN = 3


def torn_run(operator: Operator, plan: Path) -> Path:
    """`rollout run PLAN` killed halfway through its TORN-th journal line; the journal."""
    killed = operator.process("run", str(plan), "--auto-approve",
                              env={killpoints.TEAR_APPEND: str(TORN)})
    assert killed.code == -9, killed.err
    [rollout_id] = operator.rollout_ids()
    return operator.state_dir / "rollouts" / rollout_id / "journal.jsonl"


def test_a_cut_short_last_line_is_moved_aside_and_the_rollout_resumes(
        operator: Operator, target: Target, fast_plan: Path):
    journal = torn_run(operator, fast_plan)
    rollout_id = journal.parent.name
    whole, cut = journal.read_bytes().rsplit(b"\n", 1)
    assert whole.count(b"\n") == TORN - 2 and cut

    refused = operator("status")
    assert refused.code == 2
    assert f"journal {journal} line {TORN} ends without a newline (cut short)" in refused.err
    assert f"`rollout repair {rollout_id}` moves it to a side file" in refused.err

    repaired = operator("repair", "--yes")

    assert repaired.code == 0, repaired.err
    [side_file] = journal.parent.glob("journal.jsonl.corrupt-*")
    assert side_file.read_bytes() == cut
    assert repaired.out == (f"moved line {TORN} of {journal} ({len(cut)} bytes) to "
                            f"{side_file}; `rollout resume {rollout_id}` continues\n")
    assert journal.read_bytes().startswith(whole + b"\n")
    notes = [e["text"] for e in operator.events() if e["type"] == "note"]
    assert notes[0].startswith("took over the stale lock ")  # the killed run's
    assert notes[1] == (f"repaired the journal: its cut-short line {TORN} ({len(cut)} bytes)"
                        f" moved to {side_file.name}")

    again = operator("repair", "--yes")
    assert again.code == 0, again.err
    assert again.out == f"nothing to repair: the journal of {rollout_id} ends with a whole event\n"

    finished = operator("resume", "--follow", "--auto-approve")
    assert finished.code == 0, finished.out + finished.err
    assert operator.status()["phase"] == "succeeded"
    assert target.outcome() == {"test": "stopped", "percentage": 100, "flags": {}}


def test_repair_asks_on_a_terminal_and_needs_yes_without_one(
        operator: Operator, target: Target, fast_plan: Path):
    journal = torn_run(operator, fast_plan)
    damaged = journal.read_bytes()

    refused = operator("repair")
    assert refused.code == 2
    assert "repair needs --yes when there is no terminal to confirm on" in refused.err
    assert journal.read_bytes() == damaged

    declined = _on_a_terminal(operator, "repair", answer="n")
    assert declined.returncode == 2, declined.stdout
    assert "Move the cut-short last line of the active rollout's journal aside?" in (
        declined.stdout)
    assert journal.read_bytes() == damaged

    accepted = _on_a_terminal(operator, "repair", answer="y")
    assert accepted.returncode == 0, accepted.stdout
    assert f"moved line {TORN} of {journal}" in accepted.stdout
    assert list(journal.parent.glob("journal.jsonl.corrupt-*")) != []


def _on_a_terminal(operator: Operator, *args: str, answer: str
                   ) -> subprocess.CompletedProcess[str]:
    """`python -m rollout_cli ARGS...` with a pseudo-terminal as its stdin, typing ``answer``."""
    leader, follower = os.openpty()
    try:
        os.write(leader, f"{answer}\n".encode())
        return subprocess.run(
            [sys.executable, "-m", "rollout_cli", *args, "--state-dir", str(operator.state_dir)],
            stdin=follower, capture_output=True, text=True, timeout=60, cwd=operator.cwd,
            env=operator.env())
    finally:
        os.close(follower)
        os.close(leader)


def test_damage_before_the_last_line_is_reported_not_repaired(
        operator: Operator, target: Target, fast_plan: Path):
    assert operator("start", str(fast_plan)).code == 3
    [rollout_id] = operator.rollout_ids()
    journal = operator.state_dir / "rollouts" / rollout_id / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(lines[0] + b"{not json\n" + b"".join(lines[2:]))
    damaged = journal.read_bytes()

    refused = operator("repair", rollout_id, "--yes")

    assert refused.code == 2
    assert f"journal {journal} line 2 is not valid JSON" in refused.err
    assert "lines follow it, so this is damage, not an interrupted write" in refused.err
    assert journal.read_bytes() == damaged
    assert list(journal.parent.glob("journal.jsonl.corrupt-*")) == []


def test_repair_waits_for_no_one_holding_the_lock(operator: Operator, target: Target,
                                                 fast_plan: Path):
    journal = torn_run(operator, fast_plan)
    damaged = journal.read_bytes()
    rollout = operator.store.open(journal.parent.name)

    # Another command (alive: this very process) holds the rollout's lock.
    with rollout.lock("advance", journal_takeover=False) as held:
        holder = held.id
        refused = operator("repair", "--yes")

    assert refused.code == 4
    assert f"ID:        {holder}" in refused.err
    assert journal.read_bytes() == damaged

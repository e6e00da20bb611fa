"""The disk fills up in the middle of a rollout: exit 6, the file and the OS error named,
nothing half-written left behind, and `rollout resume` finishes once there is room.

The disk is a real limit: the `rollout run` process may grow no file past N bytes
(RLIMIT_FSIZE, set by killpoints.py), so the kernel refuses the journal append that
would cross it (EFBIG), as a full disk refuses with ENOSPC. N is where the journal of an
uninterrupted run ends once traffic is at 25%, so the rollout is part-way through. Plans are plans/brain-api-demo.yaml with
0s bakes and no analysis (conftest.derive_plan).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import CliResult
from tests.rollouts import killpoints
from tests.rollouts.conftest import Operator, Target, serve


def journal_bytes_at_25_percent(rollout: Callable[..., CliResult], plan: Path,
                                tmp_path: Path) -> int:
    """The size of an uninterrupted run's journal right after traffic moved to 25%."""
    probe = Operator(rollout, tmp_path / "probe", tmp_path)
    with serve():
        assert probe("run", str(plan), "--auto-approve", "--output", "json").code == 0
    events = probe.events()
    [journal] = probe.state_dir.glob("rollouts/*/journal.jsonl")
    lines = journal.read_bytes().splitlines(keepends=True)
    at_25 = next(e["seq"] for e in events
                 if e["type"] == "stage-started" and e.get("percentage") == 25)
    traffic = next(e["call_id"] for e in events[at_25:]
                   if e["type"] == "intent" and e["kind"] == "traffic")
    moved = next(e["seq"] for e in events if e["type"] == "outcome" and e["call_id"] == traffic)
    return sum(len(line) for line in lines[:moved])


def test_a_full_disk_mid_rollout_is_exit_6_and_resume_finishes_it(
        operator: Operator, target: Target, fast_plan: Path,
        rollout: Callable[..., CliResult], tmp_path: Path):
    limit = journal_bytes_at_25_percent(rollout, fast_plan, tmp_path)

    stopped = operator.process("run", str(fast_plan), "--auto-approve",
                               env={killpoints.FILE_SIZE_LIMIT: str(limit)})

    [journal] = operator.state_dir.glob("rollouts/*/journal.jsonl")
    assert stopped.code == 6, stopped.out + stopped.err
    assert f"error: could not append to journal {journal}: File too large (EFBIG)." in (
        stopped.err)
    assert "`rollout resume` continues" in stopped.err
    # The refused line was taken back: the journal ends with a whole event. (Where exactly
    # it stops varies a little: times and ports give each run's lines other lengths.)
    assert journal.read_bytes().endswith(b"\n") and journal.stat().st_size <= limit
    assert sorted(p.name for p in operator.state_dir.rglob("*.tmp")) == []
    status = operator.status()
    assert status["phase"] == "running" and 10 <= status["percentage"] < 100, status
    assert list(operator.state_dir.glob("rollouts/*/lock.json")) == []   # released on the way out

    finished = operator("resume", "--follow", "--auto-approve")   # the disk has room again

    assert finished.code == 0, finished.out + finished.err
    assert operator.status()["phase"] == "succeeded"
    assert target.outcome() == {"test": "stopped", "percentage": 100, "flags": {}}


def test_rollout_help_lists_every_exit_code(rollout: Callable[..., CliResult]):
    shown = rollout("--help")

    assert shown.code == 0
    assert "4 locked, 5 unreachable or rollback incomplete,\n" in shown.out
    assert "6 state could not be written" in shown.out

"""A write the disk refuses: StateWriteError (exit 6) naming the file and the OS error, and
nothing half-written left behind.

The failures are real: a forked child lowers RLIMIT_FSIZE, so the kernel refuses to grow
a file past the limit (EFBIG, after a short write), as a full disk refuses with ENOSPC.
ENOSPC itself comes from os.write patched in the child, the one error a test cannot
easily get from a real disk.
"""

from __future__ import annotations

import errno
import os
import resource
from collections.abc import Callable
from multiprocessing.context import ForkContext
from pathlib import Path
from typing import Any

import pytest

from rollout_cli.errors import EXIT_STATE_WRITE, StateError, StateWriteError
from rollout_cli.store import DirectoryStore, RolloutDir
from rollout_cli.store.atomic import create_exclusive, write_atomic

BIG = {"padding": "x" * 4096}


def in_child(processes: ForkContext, act: Callable[[], Any], file_size_limit: int | None = None,
             enospc: bool = False) -> tuple[str, int | None, str]:
    """Run ``act`` in a forked child whose writes fail; (outcome, exit code, message)."""
    results = processes.Queue()

    def child() -> None:
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, resource.RLIM_INFINITY))
        if enospc:
            def full(fd: int, data: Any) -> int:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.write = full  # type: ignore[assignment]
        try:
            act()
        except Exception as problem:
            results.put((type(problem).__name__, getattr(problem, "exit_code", None),
                         str(problem)))
        else:
            results.put(("ok", None, ""))

    process = processes.Process(target=child)
    process.start()
    outcome = results.get(timeout=60)
    process.join()
    return outcome


def hidden_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob(".*") if not p.name.endswith(".guard"))


def test_state_write_error_is_a_state_error_with_its_own_exit_code() -> None:
    assert issubclass(StateWriteError, StateError)
    assert StateWriteError.exit_code == EXIT_STATE_WRITE == 6
    assert StateError.exit_code == 2


def test_a_snapshot_too_big_for_the_disk_keeps_the_old_one_and_leaves_no_temp_file(
    rollout_dir: RolloutDir, processes: ForkContext
) -> None:
    rollout_dir.save_snapshot({"stage": "canary-10"}, seq=1)
    before = (rollout_dir.path / "snapshot.json").read_bytes()

    outcome = in_child(processes, lambda: rollout_dir.save_snapshot(BIG, seq=1),
                       file_size_limit=1024)

    kind, code, message = outcome
    assert (kind, code) == ("StateWriteError", 6)
    assert message.startswith(f"could not write snapshot {rollout_dir.path / 'snapshot.json'}:"
                              " File too large (EFBIG)")
    assert "`rollout resume`" in message
    assert (rollout_dir.path / "snapshot.json").read_bytes() == before
    assert hidden_files(rollout_dir.path) == []


def test_a_journal_line_the_disk_cuts_short_is_taken_back(
    rollout_dir: RolloutDir, processes: ForkContext
) -> None:
    size = rollout_dir.journal.path.stat().st_size
    event = {"type": "note", "text": "x" * 4096}

    outcome = in_child(processes, lambda: rollout_dir.journal.append(event, time=1.0),
                       file_size_limit=size + 100)

    assert outcome[:2] == ("StateWriteError", 6)
    assert outcome[2].startswith(f"could not append to journal {rollout_dir.journal.path}:"
                                 " File too large (EFBIG)")
    assert rollout_dir.journal.path.stat().st_size == size  # not a byte of the cut line
    assert rollout_dir.journal.append(event, time=2.0)["seq"] == 2  # once there is room


def test_a_full_disk_is_a_state_write_error_naming_the_file(
    rollout_dir: RolloutDir, processes: ForkContext
) -> None:
    outcome = in_child(processes, lambda: rollout_dir.journal.append({"type": "note"}, time=1.0),
                       enospc=True)

    assert outcome[:2] == ("StateWriteError", 6)
    assert outcome[2].startswith(f"could not append to journal {rollout_dir.journal.path}:"
                                 " No space left on device (ENOSPC)")


@pytest.mark.parametrize("write", [write_atomic, create_exclusive])
def test_a_file_the_disk_refuses_leaves_no_temp_file_and_no_file(
    tmp_path: Path, processes: ForkContext, write: Callable[[Path, bytes], Any]
) -> None:
    outcome = in_child(processes, lambda: write(tmp_path / "claim", b"x" * 4096),
                       file_size_limit=1024)

    assert outcome[:2] == ("OSError", None)
    assert "File too large" in outcome[2]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_claim_or_lock_the_disk_refuses_is_a_state_write_error(
    store: DirectoryStore, make_meta: Callable[..., Any], processes: ForkContext
) -> None:
    meta = make_meta()
    rollout = store.create(meta)

    # The claim a start takes (under the plan's lock, which the disk would refuse first).
    claimed = in_child(processes, lambda: store._claim("brain-api", rollout.id), enospc=True)
    locked = in_child(processes, lambda: rollout.lock("advance").acquire(), enospc=True)

    assert claimed[:2] == ("StateWriteError", 6)
    assert f"could not claim {store.root / 'active' / 'brain-api'}" in claimed[2]
    assert locked[:2] == ("StateWriteError", 6)
    assert f"could not create lock {rollout.path / 'lock.json'}" in locked[2]
    assert store.find_active() == [] and store.held_locks() == []
    assert hidden_files(store.root) == []


def test_a_rollout_the_disk_refuses_is_not_created(
    store: DirectoryStore, make_meta: Callable[..., Any], processes: ForkContext
) -> None:
    outcome = in_child(processes, lambda: store.start(make_meta()), enospc=True)

    assert outcome[:2] == ("StateWriteError", 6)
    assert store.list() == [] and store.find_active() == [] and store.held_locks() == []
    assert hidden_files(store.root) == []

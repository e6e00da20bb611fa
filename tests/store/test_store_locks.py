"""Locks: exclusive across processes, loud about their holder, taken over only from a\nprocess that is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta
from multiprocessing.context import ForkContext
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path

import pytest

from rollout_cli.errors import EXIT_LOCKED, LockedError
from rollout_cli.store import DirectoryStore, RolloutDir
from rollout_cli.store.identity import boot_id, process_start, who
from rollout_cli.store.locks import POLL_INTERVAL


class FakeClock:
    """monotonic() and sleep() for the lock's retry loop, with no real waiting."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _hold_lock(root: str, rollout_id: str, held: Event, release: Event) -> None:
    with DirectoryStore(Path(root)).open(rollout_id).lock("advance"):
        held.set()
        release.wait(timeout=60)


def _dead_pid() -> int:
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    return int(finished.stdout)


def _plant_lock(rollout_dir: RolloutDir, **fields: object) -> dict[str, object]:
    record: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "path": str(rollout_dir.path / "lock.json"),
        "operation": "advance",
        "who": who(),
        "pid": os.getpid(),
        "version": "0.1.0",
        "created": "2024-05-01T10:00:00Z",
        **fields,
    }
    (rollout_dir.path / "lock.json").write_text(json.dumps(record))
    return record


def test_lock_record_names_its_holder(rollout_dir: RolloutDir) -> None:
    with rollout_dir.lock("advance") as lock:
        record = json.loads((rollout_dir.path / "lock.json").read_text())
        assert record == lock.record
        assert uuid.UUID(record["id"])
        assert record["who"] == who()
        assert record["pid"] == os.getpid()
        assert record["operation"] == "advance"
        assert record["version"] == "0.1.0"
        assert datetime.fromisoformat(record["created"]).utcoffset() == timedelta(0)
        assert (rollout_dir.path / "lock.json").stat().st_mode & 0o777 == 0o600
    assert not (rollout_dir.path / "lock.json").exists()


def test_a_lock_held_by_another_process_is_refused_with_its_record(
    store: DirectoryStore, rollout_dir: RolloutDir, processes: ForkContext
) -> None:
    held, release = processes.Event(), processes.Event()
    holder = processes.Process(
        target=_hold_lock, args=(str(store.root), rollout_dir.id, held, release)
    )
    holder.start()
    try:
        assert held.wait(timeout=60)
        with pytest.raises(LockedError) as caught:
            rollout_dir.lock("rollback").acquire()
    finally:
        release.set()
        holder.join()
    assert holder.exitcode == 0

    error = caught.value
    assert error.exit_code == EXIT_LOCKED
    assert error.record["pid"] == holder.pid
    assert error.record["operation"] == "advance"
    message = str(error)
    assert message.startswith(f"rollout {rollout_dir.id} is locked by another command.")
    for line in ("Lock Info:", f"ID:        {error.record['id']}", "Operation: advance"):
        assert line in message
    assert f"Who:       {who()}" in message
    assert f"holder, pid {holder.pid} (advance), is still running: wait for it" in message
    assert "rollout unlock" not in message
    assert "STALE" not in message

    with rollout_dir.lock("rollback"):  # the holder is gone and released it
        pass


def test_a_dead_holders_lock_on_this_host_is_taken_over_and_journaled(
    rollout_dir: RolloutDir
) -> None:
    dead = _dead_pid()
    planted = _plant_lock(rollout_dir, pid=dead)
    before = rollout_dir.journal.last_seq()

    with rollout_dir.lock("resume") as lock:
        held = json.loads((rollout_dir.path / "lock.json").read_text())
        assert held == lock.record
        assert (held["pid"], held["operation"]) == (os.getpid(), "resume")
        assert lock.took_over == planted

    notes = list(rollout_dir.journal.events(after_seq=before))
    assert [(e["type"], e["text"]) for e in notes] == [(
        "note",
        f"took over the stale lock {planted['id']} of {who()} pid {dead}"
        " (advance, created 2024-05-01T10:00:00Z)",
    )]
    assert not (rollout_dir.path / "lock.json").exists()


@pytest.mark.parametrize("holder", [
    {"pid_start": -1},                  # this pid now names a later process
    {"boot_id": "an-earlier-boot"},     # the host rebooted since
])
def test_a_lock_whose_pid_now_names_another_process_is_taken_over(
    rollout_dir: RolloutDir, holder: dict[str, object]
) -> None:
    # As a restarted container's pid 1 finds the lock its predecessor, also pid 1, left.
    planted = _plant_lock(rollout_dir, pid=os.getpid(), **holder)

    with rollout_dir.lock("resume") as lock:
        assert lock.took_over == planted


def test_a_lock_record_tells_its_process_from_a_later_one_with_the_same_pid(
    rollout_dir: RolloutDir
) -> None:
    with rollout_dir.lock("advance") as lock:
        assert lock.record is not None
        assert lock.record["pid_start"] == process_start(os.getpid()) is not None
        assert lock.record["boot_id"] == boot_id() is not None
        with pytest.raises(LockedError, match="locked by another command"):
            rollout_dir.lock("resume").acquire()


def test_a_stale_plan_lock_is_taken_over(store: DirectoryStore) -> None:
    with store.lock_plan("brain-api", "start") as first:
        record = dict(first.record or {}, pid=_dead_pid())
    lock_file = store.root / "plan-locks" / "brain-api.json"
    lock_file.write_text(json.dumps(record))

    with store.lock_plan("brain-api", "start") as second:
        assert second.took_over == record
        assert json.loads(lock_file.read_text())["id"] == second.id


def _contend(root: str, rollout_id: str, start: Barrier, tried: Barrier, results: Queue) -> None:
    lock = DirectoryStore(Path(root)).open(rollout_id).lock("resume")
    start.wait(timeout=60)
    try:
        lock.acquire()
    except LockedError as refused:
        tried.wait(timeout=60)
        results.put(("refused", refused.record["id"]))
        return
    tried.wait(timeout=60)  # every contender has tried while we hold it
    ours, on_disk = lock.id, json.loads(lock.path.read_text())["id"]
    lock.release()
    results.put(("held", ours if on_disk == ours else f"lost to {on_disk}"))


def test_processes_that_see_the_same_stale_lock_take_it_over_once(
    store: DirectoryStore, rollout_dir: RolloutDir, processes: ForkContext
) -> None:
    contenders = 4
    for _ in range(8):
        _plant_lock(rollout_dir, pid=_dead_pid())
        start, tried = processes.Barrier(contenders), processes.Barrier(contenders)
        results = processes.Queue()
        racers = [
            processes.Process(
                target=_contend, args=(str(store.root), rollout_dir.id, start, tried, results)
            )
            for _ in range(contenders)
        ]
        for racer in racers:
            racer.start()
        outcomes = [results.get(timeout=60) for _ in racers]
        for racer in racers:
            racer.join()

        held = [lock_id for outcome, lock_id in outcomes if outcome == "held"]
        assert len(held) == 1, outcomes
        assert sorted(outcomes) == sorted([("held", held[0])] + [("refused", held[0])] * 3)
    notes = [e for e in rollout_dir.journal.events() if e["type"] == "note"]
    assert len(notes) == 8


def test_a_holder_on_another_host_is_never_taken_over(rollout_dir: RolloutDir) -> None:
    planted = _plant_lock(rollout_dir, pid=_dead_pid(), who="bob@ci-runner-7")

    with pytest.raises(LockedError) as caught:
        rollout_dir.lock("advance").acquire()
    message = str(caught.value)
    assert message.startswith(
        f"rollout {rollout_dir.id} is locked by a command on another host (ci-runner-7)."
    )
    assert "Who:       bob@ci-runner-7" in message
    assert f"If it no longer runs, release it with: rollout unlock {planted['id']}" in message
    assert json.loads((rollout_dir.path / "lock.json").read_text()) == planted


def test_unlock_by_id_releases_the_lock(store: DirectoryStore, rollout_dir: RolloutDir) -> None:
    planted = _plant_lock(rollout_dir, pid=_dead_pid())

    assert store.unlock(str(planted["id"])) == planted
    assert not (rollout_dir.path / "lock.json").exists()
    with rollout_dir.lock("advance"):
        pass


def test_timeout_retries_until_the_deadline_then_gives_up(rollout_dir: RolloutDir) -> None:
    clock = FakeClock()
    _plant_lock(rollout_dir)
    lock = rollout_dir.lock("advance", timeout=1.0, sleep=clock.sleep, monotonic=clock.monotonic)

    with pytest.raises(LockedError, match=r"locked by another command \(gave up after 1s\)"):
        lock.acquire()
    assert sum(clock.sleeps) == pytest.approx(1.0)
    assert all(0 < seconds <= POLL_INTERVAL for seconds in clock.sleeps)


def test_timeout_acquires_once_the_holder_releases(
    store: DirectoryStore, rollout_dir: RolloutDir
) -> None:
    clock = FakeClock()
    planted = _plant_lock(rollout_dir)

    def sleep_then_holder_finishes(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.sleeps) == 2:
            store.unlock(str(planted["id"]))

    lock = rollout_dir.lock("advance", timeout=30.0, sleep=sleep_then_holder_finishes,
                            monotonic=clock.monotonic)
    with lock:
        assert json.loads((rollout_dir.path / "lock.json").read_text())["id"] == lock.id
    assert len(clock.sleeps) == 2


def test_no_timeout_means_no_sleeping(rollout_dir: RolloutDir) -> None:
    clock = FakeClock()
    _plant_lock(rollout_dir)

    with pytest.raises(LockedError):
        rollout_dir.lock("advance", sleep=clock.sleep, monotonic=clock.monotonic).acquire()
    assert clock.sleeps == []


def test_an_unreadable_lock_record_is_reported_not_stolen(rollout_dir: RolloutDir) -> None:
    (rollout_dir.path / "lock.json").write_text("{")

    with pytest.raises(LockedError, match=r"record is unreadable .*delete that file by hand"):
        rollout_dir.lock("advance").acquire()
    assert (rollout_dir.path / "lock.json").read_text() == "{"

"""The directory store: every rollout under one directory (see ``paths`` for the layout).

The embedded default behind ``--state DIR``. A rollout appears whole or not at all (it is
assembled in a hidden directory, then renamed into place), a journal line is fsync'd
before ``append`` returns, and locks are files created exclusively.
"""

from __future__ import annotations

import builtins
import contextlib
import math
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from rollout_cli.errors import StateError
from rollout_cli.store.atomic import (
    DIR_MODE,
    create_exclusive,
    encode_json,
    ensure_dir,
    guarded,
    read_json_object,
    remove_file,
    rename_dir,
    state_io,
    state_write,
    write_atomic,
)
from rollout_cli.store.journal import JournalFile
from rollout_cli.store.lease import Driver, Lease, next_lease, released
from rollout_cli.store.locks import LockFile, remove_lock, takeover_note
from rollout_cli.store.paths import (
    ACTIVE_DIR,
    JOURNAL_FILE,
    LEASE_FILE,
    LOCK_FILE,
    META_FILE,
    PLAN_LOCKS_DIR,
    ROLLOUTS_DIR,
    SNAPSHOT_FILE,
    check_name,
    is_safe_name,
)
from rollout_cli.store.protocol import (
    START_LOCK_WAIT,
    LockRecord,
    PlanClaimed,
    RolloutMeta,
    Snapshot,
    created_event,
    some_ids,
)
from rollout_cli.store.snapshot import SnapshotUnreadable, load_snapshot, save_snapshot

# A rollout is assembled in a hidden directory, then renamed into place.
_STAGING = ".creating-"
_ABANDONED = ".abandoned-"
# How often a napping driver looks at the journal's size for another process's append
# (an agent's hundred drivers: 400 looks a second, a few % of a core).
NEWS_POLL = 0.25


class RolloutDir:
    """One rollout's directory: metadata, journal, snapshot and lock."""

    def __init__(self, path: Path):
        self.path = path
        self.id = path.name
        self.journal = JournalFile(path / JOURNAL_FILE)

    @property
    def meta(self) -> RolloutMeta:
        return _read_meta(self.path / META_FILE)

    def save_snapshot(self, state: Mapping[str, Any], seq: int) -> None:
        """Save the engine's state after folding every event up to ``seq``."""
        save_snapshot(self.path / SNAPSHOT_FILE, state, seq)

    def load_snapshot(self) -> Snapshot | None:
        """The snapshot, if there is a usable one: a damaged one means a full replay."""
        try:
            return load_snapshot(self.path / SNAPSHOT_FILE)
        except SnapshotUnreadable:
            return None

    def lock(
        self,
        operation: str,
        *,
        timeout: float = 0.0,
        journal_takeover: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> LockFile:
        """The rollout's lock; taking over a stale one is journaled as a note, unless
        ``journal_takeover`` is False (``repair``: the journal cannot take a line yet)."""
        return LockFile(
            self.path / LOCK_FILE,
            f"rollout {self.id}",
            operation,
            timeout=timeout,
            sleep=sleep,
            monotonic=monotonic,
            on_takeover=self.note_takeover if journal_takeover else None,
        )

    def note_takeover(self, stale: LockRecord) -> None:
        """Journal that the stale lock ``stale`` was taken over (hold the lock)."""
        self.journal.append({"type": "note", "text": takeover_note(stale)}, time=time.time())

    def lock_holder(self) -> LockRecord | None:
        return _read_lock(self.path / LOCK_FILE)

    def lease(self) -> Lease | None:
        path = self.path / LEASE_FILE
        try:
            return Lease.from_json(read_json_object(path))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(f"lease {path} is damaged ({exc}): remove it to let a"
                             " driver take the rollout") from exc

    def take_lease(self, driver: Driver, *, ttl: float, now: float) -> Lease | None:
        path = self.path / LEASE_FILE
        with state_write(f"take lease {path}"), guarded(path):
            lease = next_lease(self.lease(), driver, ttl, now)
            if lease is not None:
                write_atomic(path, encode_json(lease.to_json()))
            return lease

    def release_lease(self, driver: Driver) -> bool:
        path = self.path / LEASE_FILE
        with state_write(f"release lease {path}"), guarded(path):
            lease = released(self.lease(), driver)
            if lease is not None:
                write_atomic(path, encode_json(lease.to_json()))
            return lease is not None

    def wait_for_news(self, seq: int, timeout: float, sleep: Callable[[float], None]) -> None:
        """Look at the journal's size every NEWS_POLL seconds: a change is news."""
        try:
            if self.journal.last_seq() > seq:
                return
        except StateError:
            return   # a torn or damaged tail: let the reader that follows deal with it
        size, steps = self._journal_size(), max(1, math.ceil(timeout / NEWS_POLL - 1e-9))
        for _ in range(steps):
            sleep(timeout / steps)
            if self._journal_size() != size:
                return

    def _journal_size(self) -> int:
        try:
            return self.journal.path.stat().st_size
        except OSError:
            return -1


class DirectoryStore:
    """Every rollout under one directory, ``root`` (see ``paths`` for the layout)."""

    def __init__(self, root: Path):
        self.root = root
        self._rollouts = root / ROLLOUTS_DIR
        self._active = root / ACTIVE_DIR
        self._plan_locks = root / PLAN_LOCKS_DIR

    def create(
        self,
        meta: RolloutMeta,
        *,
        time: float | None = None,
        details: Mapping[str, Any] | None = None,
        notes: Sequence[str] = (),
    ) -> RolloutDir:
        """Make the rollout's directory: its metadata, and its journal holding the
        ``created`` event (with ``details``) at ``time`` (default: ``meta.created``), then a
        note for each of ``notes``. Published by one rename, it appears whole or not at all:
        no rollout is ever seen without its first event."""
        check_name("rollout id", meta.id)
        final = self._rollouts / meta.id
        at = meta.created.timestamp() if time is None else time
        with state_write(f"create rollout {final}"):
            ensure_dir(self._rollouts)
            staging = self._rollouts / f"{_STAGING}{meta.id}-{secrets.token_hex(4)}"
            staging.mkdir(mode=DIR_MODE)
            try:
                write_atomic(staging / META_FILE, encode_json(meta.to_json()))
                journal = JournalFile(staging / JOURNAL_FILE)
                journal.append(created_event(meta, details), time=at)
                for note in notes:
                    journal.append({"type": "note", "text": note}, time=at)
                self._publish(staging, final)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return RolloutDir(final)

    def start(
        self,
        meta: RolloutMeta,
        *,
        time: float | None = None,
        details: Mapping[str, Any] | None = None,
        finished: Callable[[RolloutDir], bool] = lambda rollout: False,
        timeout: float = START_LOCK_WAIT,
    ) -> RolloutDir:
        """``create`` the rollout as its plan's active one, under the plan's lock.

        The claim is taken first, then the rollout is published: a crash in between leaves
        a claim naming a rollout that does not exist, which readers skip and the next start
        clears (holding the plan's lock, it knows that creation is dead). It also clears
        the claim of a rollout that ``finished`` says has ended. Each is noted in the new
        rollout's journal. A losing start leaves nothing behind.
        """
        check_name("rollout id", meta.id)
        with self.lock_plan(meta.plan_name, "start", timeout=timeout):
            notes = self._clear_claim(meta.plan_name, finished)
            self._claim(meta.plan_name, meta.id)
            try:
                return self.create(meta, time=time, details=details, notes=notes)
            except BaseException:
                with contextlib.suppress(StateError):
                    self.release_active(meta.plan_name, meta.id)
                raise

    def open(self, rollout_id: str) -> RolloutDir:
        """The rollout with this id, or with the one id that starts with it."""
        ids = self._ids()
        if rollout_id in ids:
            return RolloutDir(self._rollouts / rollout_id)
        matches = [known for known in ids if rollout_id and known.startswith(rollout_id)]
        if len(matches) == 1:
            return RolloutDir(self._rollouts / matches[0])
        if matches:
            raise StateError(
                f"rollout id {rollout_id!r} is ambiguous under {self.root}:"
                f" it starts {some_ids(matches)}"
            )
        known = f"known rollouts: {some_ids(ids)}" if ids else "there are no rollouts yet"
        raise StateError(f"no rollout {rollout_id!r} under {self.root}; {known}")

    def list(self) -> builtins.list[RolloutMeta]:
        """Every rollout's metadata, oldest first."""
        metas = [_read_meta(self._rollouts / rollout_id / META_FILE) for rollout_id in self._ids()]
        return sorted(metas, key=lambda meta: (meta.created, meta.id))

    def _claim(self, plan_name: str, rollout_id: str) -> None:
        claim = self._active / plan_name
        with state_write(f"claim {claim}"):
            ensure_dir(self._active)
            if create_exclusive(claim, f"{rollout_id}\n".encode()):
                return
            holder = _read_claim(claim)
        if holder == rollout_id:
            return  # claiming twice is what a retried start does
        gone = "" if holder in self._ids() else ", which no longer exists (remove that file)"
        raise PlanClaimed(
            f"plan {plan_name!r} already has an active rollout, {holder}{gone}; finish it"
            f" (`rollout resume {holder}`) or roll it back first ({claim})", holder
        )

    def _clear_claim(self, plan_name: str, finished: Callable[[RolloutDir], bool]) -> list[str]:
        """End the plan's claim if its rollout never came to be or has ended (hold the
        plan's lock); what was done, as notes."""
        claim = self._active / plan_name
        holder = _read_claim(claim)
        if holder is None or not is_safe_name(holder):
            return []
        rollout = RolloutDir(self._rollouts / holder)
        if not rollout.path.is_dir():
            for staging in self._rollouts.glob(f"{_STAGING}{holder}-*"):
                shutil.rmtree(staging, ignore_errors=True)
            note = (f"cleared the claim of rollout {holder}, whose start was killed before it"
                    " was created")
        elif rollout.journal.last_seq() == 0:
            # Left by a version that published a rollout before its first event.
            aside = self._rollouts / f"{_ABANDONED}{holder}"
            with state_write(f"set aside {rollout.path}"):
                rename_dir(rollout.path, aside)
            note = (f"set aside rollout {holder}, whose start was killed before its first"
                    f" event (kept as {aside})")
        elif finished(rollout):
            note = (f"released the claim of rollout {holder}, which had ended without"
                    " releasing it")
        else:
            return []
        return [note] if self.release_active(plan_name, holder) else []

    def release_active(self, plan_name: str, rollout_id: str) -> bool:
        """End ``rollout_id``'s claim on its plan; False if it held none (safe to repeat)."""
        check_name("plan name", plan_name)
        claim = self._active / plan_name
        # Guarded: between our look and the removal, another release must not remove it
        # and a start claim the plan anew, or we would remove that new claim.
        with state_write(f"release {claim}"):
            if _read_claim(claim) != rollout_id:
                return False  # the common case, and no claim at all: no guard needed
            with guarded(claim):
                if _read_claim(claim) != rollout_id:
                    return False
                remove_file(claim)
        return True

    def find_active(self) -> builtins.list[RolloutMeta]:
        """The metadata of each plan's active rollout, by plan name."""
        active = []
        for claim in _entries(self._active):
            rollout_id = _read_claim(claim)
            if rollout_id is None:
                continue  # released while we looked
            meta_file = self._rollouts / rollout_id / META_FILE
            if not meta_file.exists():
                continue  # being created, or its start was killed: the next start clears it
            active.append(_read_meta(meta_file))
        return active

    def lock_plan(
        self,
        plan_name: str,
        operation: str,
        *,
        timeout: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> LockFile:
        """The lock of a plan: held while a rollout of it is created (``start``), and for
        commands that act without a rollout."""
        check_name("plan name", plan_name)
        with state_write(f"create {self._plan_locks}"):
            ensure_dir(self._plan_locks)
        return LockFile(
            self._plan_locks / f"{plan_name}.json",
            f"plan {plan_name}",
            operation,
            timeout=timeout,
            sleep=sleep,
            monotonic=monotonic,
        )

    def held_locks(self) -> builtins.list[LockRecord]:
        """The record of every lock held under the root, unreadable ones left out."""
        return [record for lock_file in self._lock_files()
                if (record := _read_lock(lock_file)) is not None]

    def unlock(self, lock_id: str) -> LockRecord:
        """Release the lock with this id, whoever holds it; returns its record."""
        for lock_file in self._lock_files():
            record = _read_lock(lock_file)
            if record and record.get("id") == lock_id and remove_lock(lock_file, lock_id):
                return record
        held = [str(record.get("id")) for record in self.held_locks()]
        known = f"held locks: {some_ids(held)}" if held else "no locks are held"
        raise StateError(f"no lock with id {lock_id!r} under {self.root}; {known}")

    def _publish(self, staging: Path, final: Path) -> None:
        try:
            rename_dir(staging, final)
        except OSError as exc:
            if not final.exists():
                raise
            raise StateError(f"rollout {final.name} already exists under {self.root}") from exc

    def _ids(self) -> builtins.list[str]:
        return [entry.name for entry in _entries(self._rollouts) if entry.is_dir()]

    def _lock_files(self) -> Iterator[Path]:
        for rollout in _entries(self._rollouts):
            if (rollout / LOCK_FILE).exists():
                yield rollout / LOCK_FILE
        yield from (entry for entry in _entries(self._plan_locks) if entry.suffix == ".json")


def _entries(directory: Path) -> list[Path]:
    """The directory's entries, sorted, without hidden ones (temp files of atomic writes)."""
    with state_io(f"list {directory}"):
        try:
            return sorted(p for p in directory.iterdir() if not p.name.startswith("."))
        except FileNotFoundError:
            return []


def _read_meta(path: Path) -> RolloutMeta:
    try:
        data = read_json_object(path)
    except FileNotFoundError:
        raise StateError(f"rollout metadata {path} is missing") from None
    except (OSError, ValueError) as exc:
        raise StateError(f"rollout metadata {path} is unreadable: {exc}") from exc
    return RolloutMeta.from_json(data, path)


def _read_lock(lock_file: Path) -> LockRecord | None:
    """The record in ``lock_file``; None when it is gone or unreadable."""
    try:
        return read_json_object(lock_file)
    except (OSError, ValueError):
        return None


def _read_claim(claim: Path) -> str | None:
    try:
        return claim.read_text().strip()
    except FileNotFoundError:
        return None

"""Terraform-style locks: a file naming its holder, created exclusively, released by id.

A lock whose holder is gone (it ran on this host, and its pid no longer exists or now
names a later process) is STALE:
the next command that needs the lock takes it over, and a rollout's lock says so in the
rollout's journal. A lock held from another host is never taken over: whether its process
still runs cannot be seen from here, so only ``rollout unlock ID`` releases it.

Removing or replacing a lock file, for a release, a takeover or an unlock, happens under
a guard (``atomic.guarded``) and only while the file still holds the id that was meant:
of two commands that both see the same stale lock, one takes it over, and the other then
finds the first one's live lock.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from rollout_cli import __version__
from rollout_cli.errors import LockedError
from rollout_cli.store.atomic import (
    create_exclusive,
    encode_json,
    guarded,
    make_guard,
    read_json_object,
    remove_file,
    state_write,
    write_atomic,
)
from rollout_cli.store.identity import (
    boot_id,
    host_of,
    hostname,
    pid_alive,
    process_start,
    who,
)
from rollout_cli.store.protocol import LockRecord

POLL_INTERVAL = 0.25
UNLOCK_COMMAND = "rollout unlock {lock_id}"


class PolledLock:
    """What every store's lock does the same way: attempts until a deadline, then the
    holder's record in a LockedError; a takeover's callback once held. A store says how
    one attempt goes (``_attempt``) and what a lock holds besides its record.

    ``timeout`` > 0 polls until the deadline; ``sleep`` and ``monotonic`` are the clock,
    injectable so a test can wait without waiting. ``on_takeover`` is called with the
    record of a stale lock this one replaced, once it is held (an error there releases it).
    """

    subject: str
    operation: str

    def __init__(self, subject: str, operation: str, *, timeout: float,
                 sleep: Callable[[float], None], monotonic: Callable[[], float],
                 on_takeover: Callable[[LockRecord], None] | None):
        self.subject = subject
        self.operation = operation
        self.timeout = timeout
        self._sleep = sleep
        self._monotonic = monotonic
        self._on_takeover = on_takeover
        self.record: LockRecord | None = None
        self.took_over: LockRecord | None = None

    @property
    def id(self) -> str | None:
        return None if self.record is None else str(self.record["id"])

    def acquire(self) -> LockRecord:
        """Take the lock, taking over a stale one, or raise LockedError naming the holder."""
        if self.record is not None:
            raise RuntimeError(f"{self.subject}: this lock is already held")
        record = new_record(self._where(), self.operation)
        self._prepare(record)
        deadline = self._monotonic() + self.timeout
        try:
            while True:
                taken, holder = self._attempt(record)
                if taken:
                    break
                if holder is None:
                    continue  # released between our attempt and our look: try again now
                remaining = deadline - self._monotonic()
                if remaining <= 0:
                    raise self._refusal(holder)
                self._sleep(min(POLL_INTERVAL, remaining))
        except BaseException:
            self._abandon()
            raise
        self.record, self.took_over = record, holder
        self._held()
        if holder is not None and self._on_takeover is not None:
            try:
                self._on_takeover(holder)
            except BaseException:
                self.release()
                raise
        return record

    def release(self) -> None:
        raise NotImplementedError

    def _where(self) -> str:
        """The lock's ``path`` in its record."""
        raise NotImplementedError

    def _prepare(self, record: LockRecord) -> None:
        """Before the first attempt."""

    def _attempt(self, record: LockRecord) -> tuple[bool, LockRecord | None]:
        """(True, the stale record replaced or None) if taken; else (False, the live
        holder's record, or None to try again at once)."""
        raise NotImplementedError

    def _refusal(self, holder: LockRecord) -> LockedError:
        return locked_error(self.subject, holder, waited=self.timeout)

    def _abandon(self) -> None:
        """After a failed acquire."""

    def _held(self) -> None:
        """Once taken, before the takeover callback."""

    def __enter__(self) -> PolledLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


class LockFile(PolledLock):
    """The lock on one rollout or plan, a file: acquired on ``with``, released on exit."""

    def __init__(
        self,
        path: Path,
        subject: str,
        operation: str,
        *,
        timeout: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        on_takeover: Callable[[LockRecord], None] | None = None,
    ):
        super().__init__(subject, operation, timeout=timeout, sleep=sleep,
                         monotonic=monotonic, on_takeover=on_takeover)
        self.path = path

    def _where(self) -> str:
        return str(self.path)

    def _prepare(self, record: LockRecord) -> None:
        with state_write(f"create lock {self.path}"):
            # Made now, so that releasing never needs room on a disk that has filled up.
            make_guard(self.path)

    def _attempt(self, record: LockRecord) -> tuple[bool, LockRecord | None]:
        data = encode_json(record)
        with state_write(f"create lock {self.path}"):
            if create_exclusive(self.path, data):
                return True, None
        holder = self._holder()
        if holder is None or not is_stale(holder):
            return False, holder
        # Replaced in one step, never removed and re-created: a command arriving in
        # between would take the lock without journaling the takeover.
        with state_write(f"take over lock {self.path}"):
            if _replace_if_held(self.path, holder.get("id"), data) is not None:
                return True, holder
        return False, None  # another command took it over first: look again

    def release(self) -> None:
        """Remove the lock file, but only while it still holds our id."""
        if self.record is None:
            return
        ours, self.record = self.record["id"], None
        # None when force-unlocked, maybe re-taken since: no longer ours to remove.
        remove_lock(self.path, ours)

    def _holder(self) -> LockRecord | None:
        try:
            return read_json_object(self.path)
        except FileNotFoundError:
            return None
        except ValueError as exc:
            # Cannot come from our writers (locks appear whole); someone edited it.
            raise LockedError(
                f"{self.subject} is locked by {self.path}, whose record is unreadable ({exc});"
                " if no rollout command is running, delete that file by hand",
                {},
            ) from exc
        except OSError as exc:
            raise LockedError(f"{self.subject} is locked by {self.path}: {exc.strerror}") from exc


def remove_lock(path: Path, lock_id: object) -> LockRecord | None:
    """Remove the lock file ``path`` if it holds ``lock_id``; its record, else None."""
    with state_write(f"remove lock {path}"):
        return _replace_if_held(path, lock_id, None)


def _replace_if_held(path: Path, lock_id: object, data: bytes | None) -> LockRecord | None:
    """If ``path`` holds ``lock_id``: replace it with ``data`` (remove it for None) and
    return the record it held; else None."""
    with guarded(path):
        try:
            record = read_json_object(path)
        except (FileNotFoundError, ValueError):
            return None
        if record.get("id") != lock_id:
            return None
        if data is None:
            remove_file(path)
        else:
            write_atomic(path, data)
        return record


def takeover_note(stale: LockRecord) -> str:
    """The journal's note about a stale lock taken over."""
    return (
        f"took over the stale lock {stale.get('id', '?')} of {stale.get('who', '?')}"
        f" pid {stale.get('pid', '?')} ({stale.get('operation', '?')},"
        f" created {stale.get('created', '?')})"
    )


def new_record(path: str, operation: str) -> LockRecord:
    """A new lock's record: who holds it, from which process, where and since when."""
    return {
        "id": str(uuid.uuid4()),
        "path": path,
        "operation": operation,
        "who": who(),
        "pid": os.getpid(),
        "pid_start": process_start(os.getpid()),
        "boot_id": boot_id(),
        "version": __version__,
        "created": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }


def is_stale(record: LockRecord) -> bool:
    """True when the holder ran on this host and its process no longer exists: its pid
    is gone, or now names another process (started at another time, or before a reboot)."""
    pid = record.get("pid")
    if host_of(str(record.get("who", ""))) != hostname() or type(pid) is not int:
        return False
    if not pid_alive(pid):
        return True
    booted = boot_id()
    if record.get("boot_id") and booted and record["boot_id"] != booted:
        return True
    started = record.get("pid_start")
    return type(started) is int and process_start(pid) not in (None, started)


def locked_error(subject: str, record: LockRecord, waited: float = 0.0) -> LockedError:
    lock_id = record.get("id", "?")
    unlock = UNLOCK_COMMAND.format(lock_id=lock_id)
    host = host_of(str(record.get("who", "")))
    if host and host != hostname():
        headline = f"{subject} is locked by a command on another host ({host})."
        hint = (
            f"Whether pid {record.get('pid', '?')} still runs on {host} cannot be seen from"
            f" here, so the lock is not taken over. If it no longer runs, release it with:"
            f" {unlock}"
        )
    else:
        headline = f"{subject} is locked by another command."
        holder = f"pid {record.get('pid')} ({record.get('operation')})"
        hint = (f"Its holder, {holder}, is still running: wait for it to finish, or run "
                "again with --lock-timeout DURATION (e.g. 60s) to wait for it." if host else
                f"Its holder, {holder}, names no host, so whether it still runs cannot be "
                f"seen: wait for it, or use --lock-timeout DURATION; if it is gone, release "
                f"the lock with: {unlock}")
    if waited > 0:
        headline = headline[:-1] + f" (gave up after {waited:g}s)."
    message = f"{headline}\n\n{lock_info(record)}\n\n{hint}"
    return LockedError(message, dict(record))


def lock_info(record: LockRecord) -> str:
    """The holder in Terraform's "Lock Info" layout."""
    pid = record.get("pid", "?")
    rows = [
        ("ID", record.get("id", "?")),
        ("Path", record.get("path", "?")),
        ("Operation", record.get("operation", "?")),
        ("Who", record.get("who", "?")),
        ("Pid", pid),
        ("Version", record.get("version", "?")),
        ("Created", record.get("created", "?")),
    ]
    return "Lock Info:\n" + "\n".join(f"  {name + ':':<11}{value}" for name, value in rows)

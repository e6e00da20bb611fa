"""Terraform-style locks: a file naming its holder, created exclusively, released by id.

A lock is never stolen. When its holder is gone (same host, dead pid) the refusal says
the lock is STALE and safe to release with ``rollout unlock ID``: only a person decides.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from rollout_cli import __version__
from rollout_cli.errors import LockedError
from rollout_cli.store.atomic import (
    create_exclusive,
    encode_json,
    read_json_object,
    remove_file,
    state_io,
)
from rollout_cli.store.identity import host_of, hostname, pid_alive, who

LockRecord = dict[str, Any]

POLL_INTERVAL = 0.25
UNLOCK_COMMAND = "rollout unlock {lock_id}"


class Lock:
    """The lock on one rollout or plan, acquired on ``with`` and released on exit.

    ``timeout`` > 0 polls until the deadline; ``sleep`` and ``monotonic`` are the clock,
    injectable so a test can wait without waiting.
    """

    def __init__(
        self,
        path: Path,
        subject: str,
        operation: str,
        *,
        timeout: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.path = path
        self.subject = subject
        self.operation = operation
        self.timeout = timeout
        self._sleep = sleep
        self._monotonic = monotonic
        self.record: LockRecord | None = None

    @property
    def id(self) -> str | None:
        return None if self.record is None else str(self.record["id"])

    def acquire(self) -> LockRecord:
        """Take the lock or raise LockedError describing the holder."""
        if self.record is not None:
            raise RuntimeError(f"lock {self.path} is already held by this Lock")
        record = new_record(self.path, self.operation)
        data = encode_json(record)
        deadline = self._monotonic() + self.timeout
        while True:
            with state_io(f"create lock {self.path}"):
                if create_exclusive(self.path, data):
                    self.record = record
                    return record
            holder = self._holder()
            if holder is None:
                continue  # released between our attempt and our look: try again now
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                raise locked_error(self.subject, holder, waited=self.timeout)
            self._sleep(min(POLL_INTERVAL, remaining))

    def release(self) -> None:
        """Remove the lock file, but only while it still holds our id."""
        if self.record is None:
            return
        ours, self.record = self.record["id"], None
        with state_io(f"release lock {self.path}"):
            try:
                holder = read_json_object(self.path)
            except (FileNotFoundError, ValueError):
                return  # force-unlocked, maybe re-taken: no longer ours to remove
            if holder.get("id") == ours:
                remove_file(self.path)

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

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


def new_record(lock_file: Path, operation: str) -> LockRecord:
    return {
        "id": str(uuid.uuid4()),
        "path": str(lock_file),
        "operation": operation,
        "who": who(),
        "pid": os.getpid(),
        "version": __version__,
        "created": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }


def is_stale(record: LockRecord) -> bool:
    """True when the holder ran on this host and its process no longer exists."""
    pid = record.get("pid")
    same_host = host_of(str(record.get("who", ""))) == hostname()
    return same_host and type(pid) is int and not pid_alive(pid)


def locked_error(subject: str, record: LockRecord, waited: float = 0.0) -> LockedError:
    stale = is_stale(record)
    lock_id = record.get("id", "?")
    unlock = UNLOCK_COMMAND.format(lock_id=lock_id)
    if stale:
        headline = f"{subject} is locked by a command that is no longer running (STALE lock)."
        hint = (
            f"The lock is STALE: pid {record.get('pid')} no longer runs on {hostname()},"
            f" so it is safe to release it with: {unlock}"
        )
    else:
        headline = f"{subject} is locked by another command."
        hint = f"If you are sure no rollout command holds it, release it with: {unlock}"
    if waited > 0:
        headline = headline[:-1] + f" (gave up after {waited:g}s)."
    message = f"{headline}\n\n{lock_info(record, stale)}\n\n{hint}"
    return LockedError(message, {**record, "stale": stale})


def lock_info(record: LockRecord, stale: bool = False) -> str:
    """The holder in Terraform's "Lock Info" layout."""
    pid = f"{record.get('pid', '?')}{' (STALE: not running on this host)' if stale else ''}"
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

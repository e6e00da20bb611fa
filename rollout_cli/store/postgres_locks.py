"""Locks in PostgreSQL: a row naming the holder, beside a session advisory lock.

A holder opens a connection of its own for the lock, takes a session advisory lock keyed
on its lock's id there, then inserts the row (``locks``, unique by name). The advisory
lock lives as long as that connection: when the holder dies, however it dies (kill -9, a
lost machine), the database drops its session and the lock with it. A row whose advisory
lock nobody holds is therefore STALE, from whatever host it was taken, and the next
command takes it over (a rollout's lock journals a note, as the directory store does).

``rollout unlock ID`` deletes the row. The old holder may still run; its next append is
refused, because an append checks in its own transaction that the rollout's lock row
still carries the appender's lock id (a fencing token: ``postgres.PgJournal``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rollout_cli.errors import LockedError
from rollout_cli.store.identity import host_of, hostname
from rollout_cli.store.locks import PolledLock, lock_info
from rollout_cli.store.protocol import LockRecord

if TYPE_CHECKING:
    import psycopg

    from rollout_cli.store.postgres_db import Database


def advisory_key(lock_id: str) -> int:
    """The advisory lock (a signed 64-bit key) that a lock's holder holds."""
    return int.from_bytes(hashlib.sha256(lock_id.encode()).digest()[:8], "big", signed=True)


def holder_alive(conn: psycopg.Connection, record: LockRecord) -> bool:
    """Whether the holder of ``record`` still holds its advisory lock (its session lives)."""
    key = advisory_key(str(record.get("id", "")))
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    if row is not None and row[0]:
        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        return False
    return True


def read_record(conn: psycopg.Connection, name: str) -> LockRecord | None:
    import json

    row = conn.execute("SELECT record FROM locks WHERE name = %s", (name,)).fetchone()
    return None if row is None else json.loads(row[0])


class PgLock(PolledLock):
    """The lock named ``name`` (``rollout/ID``, ``plan/NAME``): acquired on ``with``.

    ``on_held`` and ``on_release`` tell the store whose fencing token is current; the rest
    is ``locks.PolledLock``'s."""

    def __init__(self, db: Database, name: str, subject: str, operation: str, path: str, *,
                 timeout: float = 0.0,
                 sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic,
                 on_held: Callable[[PgLock], None] | None = None,
                 on_release: Callable[[PgLock], None] | None = None,
                 on_takeover: Callable[[LockRecord], None] | None = None):
        super().__init__(subject, operation, timeout=timeout, sleep=sleep,
                         monotonic=monotonic, on_takeover=on_takeover)
        self._db = db
        self.name = name
        self.path = path
        self._on_held = on_held
        self._on_release = on_release
        self._session: psycopg.Connection | None = None
        self._pending: psycopg.Connection | None = None
        self._generation = -1

    def _where(self) -> str:
        return self.path

    def _prepare(self, record: LockRecord) -> None:
        self._pending = self._open_session(record["id"])

    def _attempt(self, record: LockRecord) -> tuple[bool, LockRecord | None]:
        return self._db.run(f"take the lock of {self.subject}",
                            lambda conn: self._try(conn, record))

    def _refusal(self, holder: LockRecord) -> LockedError:
        return locked_error(self.subject, holder, waited=self.timeout)

    def _abandon(self) -> None:
        if self._pending is not None:
            self._pending.close()
            self._pending = None

    def _held(self) -> None:
        self._session, self._pending = self._pending, None
        self._generation = self._db.generation
        if self._on_held is not None:
            self._on_held(self)

    def keep(self) -> None:
        """After the database was lost (and maybe restarted, dropping our session and its
        advisory lock), take the advisory lock again on a new session, so that the held
        lock does not look stale to others; a no-op while the connection was never lost.
        Whether the row is still ours is the append's fencing check."""
        import psycopg

        if self.record is None or self._generation == self._db.generation:
            return
        self._generation = self._db.generation
        if self._session is not None:
            try:
                self._session.execute("SELECT 1")
                return              # the session outlived the blip: its lock holds
            except psycopg.Error:
                self._session.close()
        self._session = self._open_session(str(self.record["id"]))

    def _open_session(self, lock_id: str) -> psycopg.Connection:
        """The connection whose life is the lock's: it holds the advisory lock."""
        key = advisory_key(lock_id)
        return self._db.session(f"take the lock of {self.subject}", lambda conn: conn.execute(
            "SELECT pg_advisory_lock(%s)", (key,)))

    def _try(self, conn: psycopg.Connection, record: LockRecord) -> tuple[bool, Any]:
        """(True, the stale record replaced or None) if taken; else (False, the holder)."""
        import json

        inserted = conn.execute(
            "INSERT INTO locks (name, id, record) VALUES (%s, %s, %s)"
            " ON CONFLICT (name) DO NOTHING", (self.name, record["id"], json.dumps(record)))
        if inserted.rowcount == 1:
            return True, None
        holder = read_record(conn, self.name)
        if holder is None or holder_alive(conn, holder):
            return False, holder
        replaced = conn.execute(
            "UPDATE locks SET id = %s, record = %s WHERE name = %s AND id = %s",
            (record["id"], json.dumps(record), self.name, holder.get("id")))
        if replaced.rowcount != 1:
            return False, None  # another command took it over first: look again
        return True, holder

    def release(self) -> None:
        """Delete the row while it still carries our id, and end the lock's session."""
        if self.record is None:
            return
        if self._on_release is not None:
            self._on_release(self)
        ours, self.record = str(self.record["id"]), None
        session, self._session = self._session, None
        try:
            # None when force-unlocked, maybe re-taken since: no longer ours to delete.
            self._db.run(f"release the lock of {self.subject}", lambda conn: conn.execute(
                "DELETE FROM locks WHERE name = %s AND id = %s", (self.name, ours)))
        finally:
            if session is not None:
                session.close()



def locked_error(subject: str, record: LockRecord, waited: float = 0.0) -> LockedError:
    """The refusal: the holder's record, and that it still runs (its session is alive)."""
    host = host_of(str(record.get("who", "")))
    where = f" on {host}" if host and host != hostname() else ""
    headline = f"{subject} is locked by another command"
    headline += f" (gave up after {waited:g}s)." if waited > 0 else "."
    hint = (f"Its holder, pid {record.get('pid', '?')} ({record.get('operation', '?')}){where},"
            " is connected to the state database, so it is still running: wait for it to"
            " finish, or run again with --lock-timeout DURATION (e.g. 60s) to wait for it."
            " (A holder that dies lets go of the lock with its connection.)")
    return LockedError(f"{headline}\n\n{lock_info(record)}\n\n{hint}", dict(record))

"""The PostgreSQL store: every rollout in a database that many machines share.

    --state postgresql://USER:PASSWORD@HOST:PORT/DB?schema=rollout

The tables are in ``postgres_schema``, the connection and its retries in
``postgres_db``, locks in ``postgres_locks``, appends heard by napping drivers in
``postgres_news``. What the directory store gets from
renames and fsync this store gets from transactions: a rollout is created with its
``created`` event in one, a plan is claimed in the same one, and an append is one that
numbers the event (unique (rollout_id, seq), consecutive under the rollout's row lock)
and, when this process holds the rollout's lock, first checks that the lock row still
carries its id: a writer whose lock was unlocked or taken over cannot append.
"""

from __future__ import annotations

import builtins
import json
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rollout_cli.errors import LockedError, StateError
from rollout_cli.store.journal import encode_event, numbered
from rollout_cli.store.lease import Driver, Lease, next_lease, released
from rollout_cli.store.locks import takeover_note
from rollout_cli.store.paths import check_name
from rollout_cli.store.postgres_db import Database, PgLocation, import_psycopg
from rollout_cli.store.postgres_locks import PgLock, read_record
from rollout_cli.store.postgres_news import News, last_seq, notify
from rollout_cli.store.postgres_schema import prepare
from rollout_cli.store.protocol import (
    START_LOCK_WAIT,
    Event,
    LockRecord,
    PlanClaimed,
    RolloutMeta,
    Snapshot,
    created_event,
    some_ids,
)
from rollout_cli.store.snapshot import SnapshotUnreadable, decode_snapshot, encode_snapshot

if TYPE_CHECKING:
    import psycopg

PAGE = 2000  # journal events read at a time


class PgJournal:
    """A rollout's events: the ``journal`` rows of its id."""

    def __init__(self, rollout: PgRollout):
        self._rollout = rollout
        self._db = rollout.store.db

    def append(self, event: Mapping[str, Any], *, time: float) -> Event:
        record, body = encode_event(event, time)
        rollout_id = self._rollout.id
        append_id = secrets.token_hex(12)
        schema = self._rollout.store.where.schema
        held = self._rollout.store.held_lock(rollout_id)
        fence = None if held is None else held.id
        if held is not None:
            held.keep()

        def work(conn: psycopg.Connection) -> Event:
            # Run again after a lost connection: the event may be stored already.
            done = conn.execute("SELECT body FROM journal WHERE append_id = %s",
                                (append_id,)).fetchone()
            if done is not None:
                return json.loads(done[0])
            # The rollout's row, locked: appends to one rollout are numbered one at a time.
            conn.execute("SELECT 1 FROM rollouts WHERE id = %s FOR UPDATE", (rollout_id,))
            if fence is not None:
                self._check_fence(conn, fence)
            seq = last_seq(conn, rollout_id) + 1
            conn.execute("INSERT INTO journal (rollout_id, seq, body, append_id)"
                         " VALUES (%s, %s, %s, %s)",
                         (rollout_id, seq, numbered(seq, body).decode(), append_id))
            notify(conn, schema, rollout_id, seq)
            return {"seq": seq, **record}

        stored = self._db.run(f"append to the journal of rollout {rollout_id}", work)
        if held is not None:
            held.keep()       # the connection was remade meanwhile: hold on to the lock
        return stored

    def _check_fence(self, conn: psycopg.Connection, lock_id: str) -> None:
        holder = read_record(conn, f"rollout/{self._rollout.id}")
        if holder is not None and holder.get("id") == lock_id:
            return
        now = ("it is now held by {} pid {} ({})".format(
            holder.get("who"), holder.get("pid"), holder.get("operation"))
            if holder else "nobody holds it now")
        raise LockedError(
            f"rollout {self._rollout.id}: this command's lock {lock_id} was released by"
            f" `rollout unlock` or taken over while it ran, and {now}; nothing more was"
            " journaled, and nothing was sent that was not journaled first. See"
            f" `rollout status {self._rollout.id}`, then `rollout resume` if it should go on",
            holder or {})

    def events(self, after_seq: int = 0) -> Iterator[Event]:
        """The events after ``after_seq``, read a page at a time (a week-long journal is
        never all in memory): the journal only grows, so pages by seq are consistent."""
        rollout_id = self._rollout.id
        last = self._db.run(f"read the journal of rollout {rollout_id}",
                            lambda conn: last_seq(conn, rollout_id))
        if last < after_seq:
            raise StateError(
                f"journal of rollout {rollout_id} in {self._rollout.store.where.shown} ends at"
                f" seq {last} but the snapshot covers seq {after_seq}: the"
                " journal lost events the snapshot has, so neither can be trusted alone")
        return self._pages(after_seq)

    def _pages(self, after_seq: int) -> Iterator[Event]:
        rollout_id = self._rollout.id
        while True:
            rows = self._db.run(f"read the journal of rollout {rollout_id}",
                                lambda conn, since=after_seq: conn.execute(
                                    "SELECT seq, body FROM journal WHERE rollout_id = %s AND"
                                    " seq > %s ORDER BY seq LIMIT %s",
                                    (rollout_id, since, PAGE)).fetchall())
            for seq, body in rows:
                yield json.loads(body)
                after_seq = seq
            if len(rows) < PAGE:
                return

    def repair(self) -> None:
        """Nothing to repair: an append is one transaction, stored whole or not at all."""
        return None


class PgRollout:
    """One rollout in the database."""

    def __init__(self, store: PostgresStore, meta: RolloutMeta):
        self.store = store
        self._meta = meta
        self.journal = PgJournal(self)

    @property
    def id(self) -> str:
        return self._meta.id

    @property
    def meta(self) -> RolloutMeta:
        return self._meta

    def lock(self, operation: str, *, timeout: float = 0.0, journal_takeover: bool = True,
             sleep: Callable[[float], None] = time.sleep,
             monotonic: Callable[[], float] = time.monotonic) -> PgLock:
        return self.store.make_lock(
            f"rollout/{self.id}", f"rollout {self.id}", operation, timeout=timeout,
            sleep=sleep, monotonic=monotonic, fence=self.id,
            on_takeover=self.note_takeover if journal_takeover else None)

    def note_takeover(self, stale: LockRecord) -> None:
        self.journal.append({"type": "note", "text": takeover_note(stale)}, time=time.time())

    def lock_holder(self) -> LockRecord | None:
        return self.store.db.run("read a lock", lambda conn: read_record(
            conn, f"rollout/{self.id}"))

    def save_snapshot(self, state: Mapping[str, Any], seq: int) -> None:
        data = encode_snapshot(state, seq).decode()
        self.store.db.run(f"save the snapshot of rollout {self.id}", lambda conn: conn.execute(
            "INSERT INTO snapshots (rollout_id, seq, state) VALUES (%s, %s, %s)"
            " ON CONFLICT (rollout_id) DO UPDATE SET seq = excluded.seq, state = excluded.state",
            (self.id, seq, data)))

    def load_snapshot(self) -> Snapshot | None:
        row = self.store.db.run(f"read the snapshot of rollout {self.id}", lambda conn: (
            conn.execute("SELECT state FROM snapshots WHERE rollout_id = %s",
                         (self.id,)).fetchone()))
        if row is None:
            return None
        try:
            return decode_snapshot(json.loads(row[0]), f"of rollout {self.id}")
        except (ValueError, SnapshotUnreadable):
            return None  # only saves replay time: the journal is the record

    def lease(self) -> Lease | None:
        return self.store.db.run(f"read the lease of rollout {self.id}", self._lease)

    def _lease(self, conn: psycopg.Connection) -> Lease | None:
        row = conn.execute("SELECT lease FROM leases WHERE rollout_id = %s",
                           (self.id,)).fetchone()
        if row is None:
            return None
        try:
            return Lease.from_json(json.loads(row[0]))
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(f"the lease of rollout {self.id} is damaged ({exc})") from exc

    def take_lease(self, driver: Driver, *, ttl: float, now: float) -> Lease | None:
        def work(conn: psycopg.Connection) -> Lease | None:
            conn.execute("SELECT 1 FROM rollouts WHERE id = %s FOR UPDATE", (self.id,))
            lease = next_lease(self._lease(conn), driver, ttl, now)
            if lease is not None:
                self._put_lease(conn, lease)
            return lease

        return self.store.db.run(f"take the lease of rollout {self.id}", work)

    def release_lease(self, driver: Driver) -> bool:
        def work(conn: psycopg.Connection) -> bool:
            conn.execute("SELECT 1 FROM rollouts WHERE id = %s FOR UPDATE", (self.id,))
            lease = released(self._lease(conn), driver)
            if lease is not None:
                self._put_lease(conn, lease)
            return lease is not None

        return self.store.db.run(f"release the lease of rollout {self.id}", work)

    def wait_for_news(self, seq: int, timeout: float, sleep: Callable[[float], None]) -> None:
        """Wait for appends' notifications (``postgres_news``), not on ``sleep``."""
        self.store.news.wait(self.id, seq, timeout)

    def _put_lease(self, conn: psycopg.Connection, lease: Lease) -> None:
        conn.execute("INSERT INTO leases (rollout_id, lease) VALUES (%s, %s)"
                     " ON CONFLICT (rollout_id) DO UPDATE SET lease = excluded.lease",
                     (self.id, json.dumps(lease.to_json())))


class PostgresStore:
    """Every rollout in one schema of a PostgreSQL database (``location``: its URL)."""

    def __init__(self, location: str, sleep: Callable[[float], None] = time.sleep):
        import_psycopg(location)
        self.where = PgLocation.parse(location)
        self.db = Database(self.where, lambda conn: prepare(conn, self.where.schema,
                                                            self.where.shown), sleep=sleep)
        self._held: dict[str, PgLock] = {}
        self.news = News(self.db, self.where.schema)

    def __repr__(self) -> str:
        return f"PostgresStore({self.where.shown!r})"

    # --- fencing: the lock under which this process appends to each rollout ----------

    def held_lock(self, rollout_id: str) -> PgLock | None:
        """The rollout's lock if this process holds it: its id is the appends' fence."""
        return self._held.get(rollout_id)

    def make_lock(self, name: str, subject: str, operation: str, *, timeout: float,
                  sleep: Callable[[float], None], monotonic: Callable[[], float],
                  fence: str | None = None,
                  on_takeover: Callable[[LockRecord], None] | None = None) -> PgLock:
        def held(lock: PgLock) -> None:
            if fence is not None:
                self._held[fence] = lock

        def let_go(lock: PgLock) -> None:
            if fence is not None and self._held.get(fence) is lock:
                del self._held[fence]

        return PgLock(self.db, name, subject, operation, f"{self.where.shown}#{name}",
                      timeout=timeout, sleep=sleep, monotonic=monotonic, on_held=held,
                      on_release=let_go, on_takeover=on_takeover)

    # --- rollouts -----------------------------------------------------------------------

    def create(self, meta: RolloutMeta, *, time: float | None = None,
               details: Mapping[str, Any] | None = None, notes: Sequence[str] = ()
               ) -> PgRollout:
        check_name("rollout id", meta.id)
        self.db.run(f"create rollout {meta.id}",
                    lambda conn: self._insert(conn, meta, time, details, notes))
        return PgRollout(self, meta)

    def _insert(self, conn: psycopg.Connection, meta: RolloutMeta, time: float | None,
                details: Mapping[str, Any] | None, notes: Sequence[str]) -> None:
        """The rollout's row and its first events, in the caller's transaction."""
        at = meta.created.timestamp() if time is None else time
        made = conn.execute(
            "INSERT INTO rollouts (id, plan_name, created, meta) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (id) DO NOTHING",
            (meta.id, meta.plan_name, meta.created, json.dumps(meta.to_json())))
        if made.rowcount != 1:
            raise StateError(f"rollout {meta.id} already exists in {self.where.shown}")
        events = [created_event(meta, details), *({"type": "note", "text": note}
                                                  for note in notes)]
        for seq, event in enumerate(events, start=1):
            _, body = encode_event(event, at)
            conn.execute("INSERT INTO journal (rollout_id, seq, body) VALUES (%s, %s, %s)",
                         (meta.id, seq, numbered(seq, body).decode()))

    def start(self, meta: RolloutMeta, *, time: float | None = None,
              details: Mapping[str, Any] | None = None,
              finished: Callable[[PgRollout], bool] = lambda rollout: False,
              timeout: float = START_LOCK_WAIT) -> PgRollout:
        """``create`` and claim the plan in one transaction, under the plan's lock."""
        check_name("rollout id", meta.id)
        with self.lock_plan(meta.plan_name, "start", timeout=timeout):
            notes = self._clear_claim(meta.plan_name, finished)

            def work(conn: psycopg.Connection) -> None:
                self._claim(conn, meta.plan_name, meta.id)
                self._insert(conn, meta, time, details, notes)

            self.db.run(f"start rollout {meta.id}", work)
        return PgRollout(self, meta)

    def _claim(self, conn: psycopg.Connection, plan_name: str, rollout_id: str) -> None:
        conn.execute("INSERT INTO claims (plan_name, rollout_id) VALUES (%s, %s)"
                     " ON CONFLICT (plan_name) DO NOTHING", (plan_name, rollout_id))
        holder = _claim_of(conn, plan_name)
        if holder in (None, rollout_id):
            return
        raise PlanClaimed(
            f"plan {plan_name!r} already has an active rollout, {holder}; finish it"
            f" (`rollout resume {holder}`) or roll it back first ({self.where.shown})", holder)

    def _clear_claim(self, plan_name: str, finished: Callable[[PgRollout], bool]) -> list[str]:
        """End the plan's claim if its rollout is gone or has ended (hold the plan's lock)."""
        holder = self.db.run("read a claim", lambda conn: _claim_of(conn, plan_name))
        if holder is None:
            return []
        meta = self._meta(holder)
        if meta is None:
            note = f"cleared the claim of rollout {holder}, which no longer exists"
        elif finished(PgRollout(self, meta)):
            note = (f"released the claim of rollout {holder}, which had ended without"
                    " releasing it")
        else:
            return []
        return [note] if self.release_active(plan_name, holder) else []

    def open(self, rollout_id: str) -> PgRollout:
        meta = self._meta(rollout_id) if rollout_id else None
        if meta is not None:
            return PgRollout(self, meta)
        ids = self._ids()
        matches = [known for known in ids if rollout_id and known.startswith(rollout_id)]
        if len(matches) == 1:
            found = self._meta(matches[0])
            if found is not None:
                return PgRollout(self, found)
        if matches:
            raise StateError(f"rollout id {rollout_id!r} is ambiguous in {self.where.shown}:"
                             f" it starts {some_ids(matches)}")
        known = f"known rollouts: {some_ids(ids)}" if ids else "there are no rollouts yet"
        raise StateError(f"no rollout {rollout_id!r} in {self.where.shown}; {known}")

    def _meta(self, rollout_id: str) -> RolloutMeta | None:
        row = self.db.run("read a rollout", lambda conn: conn.execute(
            "SELECT meta FROM rollouts WHERE id = %s", (rollout_id,)).fetchone())
        return None if row is None else self._decode_meta(row[0], rollout_id)

    def _decode_meta(self, text: str, rollout_id: str) -> RolloutMeta:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise StateError(f"the metadata of rollout {rollout_id} in {self.where.shown} is"
                             f" unreadable: {exc}") from exc
        return RolloutMeta.from_json(data, f"of rollout {rollout_id} in {self.where.shown}")

    def _ids(self) -> builtins.list[str]:
        rows = self.db.run("list rollouts", lambda conn: conn.execute(
            "SELECT id FROM rollouts ORDER BY id").fetchall())
        return [row[0] for row in rows]

    def list(self) -> builtins.list[RolloutMeta]:
        rows = self.db.run("list rollouts", lambda conn: conn.execute(
            "SELECT id, meta FROM rollouts ORDER BY created, id").fetchall())
        return [self._decode_meta(text, rollout_id) for rollout_id, text in rows]

    # --- claims -------------------------------------------------------------------------

    def release_active(self, plan_name: str, rollout_id: str) -> bool:
        check_name("plan name", plan_name)
        done = self.db.run(f"release the claim on plan {plan_name}", lambda conn: conn.execute(
            "DELETE FROM claims WHERE plan_name = %s AND rollout_id = %s",
            (plan_name, rollout_id)))
        return done.rowcount == 1

    def find_active(self) -> builtins.list[RolloutMeta]:
        rows = self.db.run("read claims", lambda conn: conn.execute(
            "SELECT r.id, r.meta FROM claims c JOIN rollouts r ON r.id = c.rollout_id"
            " ORDER BY c.plan_name").fetchall())
        return [self._decode_meta(text, rollout_id) for rollout_id, text in rows]

    # --- locks --------------------------------------------------------------------------

    def lock_plan(self, plan_name: str, operation: str, *, timeout: float = 0.0,
                  sleep: Callable[[float], None] = time.sleep,
                  monotonic: Callable[[], float] = time.monotonic) -> PgLock:
        check_name("plan name", plan_name)
        return self.make_lock(f"plan/{plan_name}", f"plan {plan_name}", operation,
                              timeout=timeout, sleep=sleep, monotonic=monotonic)

    def held_locks(self) -> builtins.list[LockRecord]:
        rows = self.db.run("read locks", lambda conn: conn.execute(
            "SELECT record FROM locks ORDER BY name").fetchall())
        return [json.loads(row[0]) for row in rows]

    def unlock(self, lock_id: str) -> LockRecord:
        row = self.db.run(f"release lock {lock_id}", lambda conn: conn.execute(
            "DELETE FROM locks WHERE id = %s RETURNING record", (lock_id,)).fetchone())
        if row is not None:
            return json.loads(row[0])
        held = [str(record.get("id")) for record in self.held_locks()]
        known = f"held locks: {some_ids(held)}" if held else "no locks are held"
        raise StateError(f"no lock with id {lock_id!r} in {self.where.shown}; {known}")


def _claim_of(conn: psycopg.Connection, plan_name: str) -> str | None:
    row = conn.execute("SELECT rollout_id FROM claims WHERE plan_name = %s",
                       (plan_name,)).fetchone()
    return None if row is None else str(row[0])


"""Appends heard as they commit: PostgreSQL's LISTEN/NOTIFY for napping drivers.

Every append notifies channel ``rollout_journal`` with ``SCHEMA ROLLOUT_ID SEQ`` in its
own transaction, so the notice goes out when the event is stored, and only then. A
process whose drivers nap (an agent, a `resume --follow`) listens on a connection of its
own, from a thread that keeps the highest seq heard per rollout; a nap ends as soon as
that passes the seq its driver has folded. While the listening connection is down, naps
last their time (a second at most), as they would with no news at all, and the thread
connects again.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rollout_cli.store.postgres_db import Database

CHANNEL = "rollout_journal"
RECONNECT_AFTER = 1.0


def notify(conn: object, schema: str, rollout_id: str, seq: int) -> None:
    """Tell listeners, at commit, that ``rollout_id`` has an event ``seq``."""
    conn.execute("SELECT pg_notify(%s, %s)",  # type: ignore[attr-defined]
                 (CHANNEL, f"{schema} {rollout_id} {seq}"))


def last_seq(conn: object, rollout_id: str) -> int:
    """The seq of the rollout's last event, 0 for none, in the caller's transaction."""
    row = conn.execute(  # type: ignore[attr-defined]
        "SELECT coalesce(max(seq), 0) FROM journal WHERE rollout_id = %s",
        (rollout_id,)).fetchone()
    return int(row[0]) if row else 0


class News:
    """The highest seq heard per rollout of one schema, and waits on it."""

    def __init__(self, db: Database, schema: str):
        self._db = db
        self._schema = schema
        self._heard: dict[str, int] = {}
        self._changed = threading.Condition()
        # Rollouts whose last seq was read since the listener last connected: appends
        # before that were not heard.
        self._known: set[str] = set()
        self._listening = threading.Event()
        self._listener: threading.Thread | None = None
        self._start = threading.Lock()

    def wait(self, rollout_id: str, seq: int, timeout: float) -> None:
        """Until an event after ``seq`` of ``rollout_id`` is heard, or ``timeout`` seconds."""
        self._listen()
        deadline = time.monotonic() + timeout
        if self._listening.wait(min(timeout, RECONNECT_AFTER)) and rollout_id not in self._known:
            last = self._last_seq(rollout_id)
            with self._changed:
                self._known.add(rollout_id)
                self._heard[rollout_id] = max(last, self._heard.get(rollout_id, 0))
        with self._changed:
            self._changed.wait_for(lambda: self._heard.get(rollout_id, 0) > seq,
                                   max(0.0, deadline - time.monotonic()))

    def _last_seq(self, rollout_id: str) -> int:
        return self._db.run(f"read the journal of rollout {rollout_id}",
                            lambda conn: last_seq(conn, rollout_id))

    def _listen(self) -> None:
        with self._start:
            if self._listener is None:
                self._listener = threading.Thread(target=self._run, daemon=True,
                                                  name="rollout journal news")
                self._listener.start()

    def _run(self) -> None:
        while True:
            conn = None
            try:
                conn = self._db.connect()
                conn.execute(f"LISTEN {CHANNEL}")
                with self._changed:
                    self._known.clear()
                self._listening.set()
                for notice in conn.notifies():
                    self._heard_of(notice.payload)
            except Exception:   # the database went away: naps last their time meanwhile
                self._listening.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
                time.sleep(RECONNECT_AFTER)

    def _heard_of(self, payload: str) -> None:
        schema, _, rest = payload.partition(" ")
        rollout_id, _, seq = rest.rpartition(" ")
        if schema != self._schema or not seq.isdigit():
            return
        with self._changed:
            if int(seq) > self._heard.get(rollout_id, 0):
                self._heard[rollout_id] = int(seq)
                self._changed.notify_all()

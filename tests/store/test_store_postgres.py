"""What is particular to the PostgreSQL store (the contract suite covers the rest): its
schema and version, the database's own guard on the journal, fencing, locks freed with
their holder's connection, concurrent writers, and a database that is away."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from multiprocessing.context import ForkContext
from pathlib import Path

import psycopg
import pytest

from rollout_cli.errors import LockedError, StateError, StateUnreachable, UsageError
from rollout_cli.store import open_store, postgres
from rollout_cli.store.postgres import PostgresStore
from tests.pg_server import PASSWORD, PgServer, free_port, sql
from tests.store.conftest import MakeMeta


def test_the_schema_is_made_on_first_use_at_version_1(pg_url: str) -> None:
    store = open_store(pg_url)

    assert store.list() == []
    assert sql(pg_url, "SELECT version FROM schema_version") == [(1,)]
    assert open_store(pg_url).list() == []  # a second store finds it made


def test_a_schema_newer_than_the_code_is_refused_with_a_clear_message(pg_url: str) -> None:
    open_store(pg_url).list()
    sql(pg_url, "UPDATE schema_version SET version = 2")

    with pytest.raises(StateError, match=r"schema version 2, newer than this rollout knows "
                                         r"\(1\).*upgrade") as refused:
        open_store(pg_url).list()
    assert refused.value.exit_code == 2
    assert PASSWORD not in str(refused.value)


def test_the_database_itself_refuses_a_second_event_with_the_same_seq(
        pg_url: str, make_meta: MakeMeta) -> None:
    rollout = open_store(pg_url).create(make_meta())

    with pytest.raises(psycopg.errors.UniqueViolation):
        sql(pg_url, "INSERT INTO journal (rollout_id, seq, body) VALUES (%s, 1, '{}')",
             rollout.id)


def test_a_writer_whose_lock_was_unlocked_cannot_append(pg_url: str, make_meta: MakeMeta
                                                        ) -> None:
    rollout = open_store(pg_url).create(make_meta())
    paused = rollout.lock("advance")
    held = paused.acquire()
    rollout.journal.append({"type": "note", "text": "while held"}, time=1.0)

    operator = open_store(pg_url)
    operator.unlock(held["id"])               # someone ran `rollout unlock` on it
    with pytest.raises(LockedError, match=f"this command's lock {held['id']} was released by"
                                          " `rollout unlock` or taken over.*nobody holds it"):
        rollout.journal.append({"type": "note", "text": "too late"}, time=2.0)
    with operator.open(rollout.id).lock("rollback") as taker:
        with pytest.raises(LockedError, match=r"it is now held by .* \(rollback\)") as refused:
            rollout.journal.append({"type": "note", "text": "still too late"}, time=3.0)
        assert refused.value.record["id"] == taker.id
        operator.open(rollout.id).journal.append({"type": "note", "text": "taker"}, time=4.0)
    paused.release()

    texts = [event.get("text") for event in operator.open(rollout.id).journal.events()]
    assert texts == [None, "while held", "taker"]


def test_a_long_journal_is_read_a_page_at_a_time_with_nothing_missed(
        pg_url: str, make_meta: MakeMeta, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "PAGE", 3)
    journal = open_store(pg_url).create(make_meta()).journal
    for n in range(2, 11):
        journal.append({"type": "note", "n": n}, time=float(n))

    assert [event["seq"] for event in journal.events()] == list(range(1, 11))
    assert [event["n"] for event in journal.events(after_seq=4)] == list(range(5, 11))
    assert [event["seq"] for event in journal.events(after_seq=9)] == [10]


def _hold_lock_then_wait(url: str, rollout_id: str, ready: object) -> None:
    lock = open_store(url).open(rollout_id).lock("resume")
    lock.acquire()
    ready.set()  # type: ignore[attr-defined]
    signal.pause()  # until the test kills it


def test_the_lock_of_a_killed_holder_is_freed_with_its_connection_and_taken_over(
        pg_url: str, make_meta: MakeMeta, processes: ForkContext) -> None:
    store = open_store(pg_url)
    rollout = store.create(make_meta())
    ready = processes.Event()
    holder = processes.Process(target=_hold_lock_then_wait, args=(pg_url, rollout.id, ready))
    holder.start()
    assert ready.wait(30)
    record = rollout.lock_holder()
    assert record is not None and record["pid"] == holder.pid
    with pytest.raises(LockedError, match="is still running"):
        rollout.lock("advance").acquire()    # alive: refused

    os.kill(holder.pid, 9)
    holder.join()
    # The server notices the dead connection at once (the socket closes with the process).
    with rollout.lock("resume", timeout=10) as taken:
        assert taken.took_over == record

    last = list(rollout.journal.events())[-1]
    assert last["text"] == (f"took over the stale lock {record['id']} of {record['who']} pid"
                            f" {holder.pid} (resume, created {record['created']})")


def _append_many(url: str, rollout_id: str, writer: int, count: int) -> None:
    journal = open_store(url).open(rollout_id).journal
    for n in range(count):
        journal.append({"type": "note", "text": f"{writer}:{n}"}, time=float(n))


def test_appends_from_many_processes_get_unique_consecutive_seqs(
        pg_url: str, make_meta: MakeMeta, processes: ForkContext) -> None:
    rollout = open_store(pg_url).create(make_meta())
    writers = [processes.Process(target=_append_many, args=(pg_url, rollout.id, w, 25))
               for w in range(6)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0

    events = list(open_store(pg_url).open(rollout.id).journal.events())
    assert [event["seq"] for event in events] == list(range(1, 152))
    assert sorted(event["text"] for event in events[1:]) == sorted(
        f"{w}:{n}" for w in range(6) for n in range(25))


def test_an_unreachable_database_is_retried_then_exit_5_naming_the_host_only() -> None:
    port = free_port()
    url = f"postgresql://rollout:{PASSWORD}@127.0.0.1:{port}/rollouts?retry=1"
    waits: list[float] = []
    store = PostgresStore(url, sleep=waits.append)

    started = time.monotonic()
    with pytest.raises(StateUnreachable) as refused:
        store.list()

    assert 1.0 <= time.monotonic() - started < 10
    assert len(waits) >= 2                   # retried, with growing waits
    assert refused.value.exit_code == 5
    message = str(refused.value)
    assert f"the state database at 127.0.0.1:{port}/rollouts did not answer for 1s" in message
    assert "`rollout resume` continues" in message
    assert PASSWORD not in message


def test_without_psycopg_the_state_url_names_the_extra_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg: ImportError

    with pytest.raises(UsageError) as refused:
        open_store(f"postgresql://rollout:{PASSWORD}@db.internal/rollouts")

    assert "pip install 'rollout-cli[postgres]'" in str(refused.value)
    assert "--state postgresql://rollout:***@db.internal/rollouts" in str(refused.value)
    assert PASSWORD not in str(refused.value)


@pytest.fixture(scope="module")
def own_server() -> object:
    """A server of this module's own, to kill without disturbing the other tests."""
    server = PgServer()
    server.start()
    yield server
    server.stop()


def test_an_append_while_the_database_restarts_waits_for_it_and_is_stored_once(
        own_server: PgServer, make_meta: MakeMeta, tmp_path: Path) -> None:
    url = own_server.schema_url(retry="60")
    rollout = open_store(url).create(make_meta())
    rollout.journal.append({"type": "note", "text": "before"}, time=1.0)

    own_server.kill()
    restart = threading.Timer(1.5, own_server.start)
    restart.start()
    try:
        stored = rollout.journal.append({"type": "note", "text": "across"}, time=2.0)
    finally:
        restart.join()

    assert stored["seq"] == 3
    events = list(open_store(url).open(rollout.id).journal.events())
    assert [(event["seq"], event.get("text")) for event in events] == [
        (1, None), (2, "before"), (3, "across")]


def test_a_lock_held_across_a_database_restart_is_held_again_not_left_stale(
        own_server: PgServer, make_meta: MakeMeta) -> None:
    url = own_server.schema_url(retry="60")
    rollout = open_store(url).create(make_meta())
    lock = rollout.lock("resume")
    record = lock.acquire()

    own_server.kill()            # the lock's session, and its advisory lock, die with it
    own_server.start()
    rollout.journal.append({"type": "note", "text": "after the restart"}, time=1.0)

    other = open_store(url).open(rollout.id)
    with pytest.raises(LockedError, match="still running") as refused:
        other.lock("advance").acquire()      # not taken over: its holder runs on
    assert refused.value.record["id"] == record["id"]
    lock.release()
    with other.lock("advance") as taken:
        assert taken.took_over is None

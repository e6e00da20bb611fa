"""What every store must do (rollout_cli/store/protocol.py), run against each of them.

A new store adds itself to STORES: a function of pytest's tmp_path and request that
returns a fresh, empty store. Tests here use the protocol only; what is particular to one
store (files, modes, processes, stale locks) is tested beside it (test_store_locks.py and
the others in this directory for the directory store).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rollout_cli.errors import LockedError, StateError
from rollout_cli.store import PlanClaimed, RolloutMeta, Store, open_store
from rollout_cli.store.identity import who
from rollout_cli.store.lease import Driver, Lease
from rollout_cli.store.protocol import Rollout

NOW = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)

STORES: dict[str, Callable[[Path, pytest.FixtureRequest], Store]] = {
    "directory": lambda tmp_path, request: open_store(tmp_path / "state"),
    "postgres": lambda tmp_path, request: open_store(request.getfixturevalue("pg_url")),
}

MakeMeta = Callable[..., RolloutMeta]


@pytest.fixture(params=list(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return STORES[request.param](tmp_path, request)


@pytest.fixture
def meta(tmp_path: Path) -> MakeMeta:
    """A new rollout's metadata: of ``plan``, created ``minutes`` after NOW."""

    def make(plan: str = "brain-api", minutes: int = 0) -> RolloutMeta:
        plan_file = tmp_path / f"{plan}.yaml"
        plan_file.write_text(f"version: 1\nname: {plan}\n")
        return RolloutMeta.for_plan(plan, plan_file, NOW + timedelta(minutes=minutes))

    return make


# --- rollouts -------------------------------------------------------------------------

def test_a_rollout_is_created_with_its_metadata_and_its_created_event(
    store: Store, meta: MakeMeta
) -> None:
    made = meta()

    rollout = store.create(made, time=1234.5, details={"plan_file": "plans/x.yaml"})

    assert rollout.id == made.id
    assert store.open(made.id).meta == made
    assert list(rollout.journal.events()) == [{
        "seq": 1, "time": 1234.5, "type": "created", "plan": "brain-api",
        "plan_file": "plans/x.yaml", "plan_digest": made.plan_digest, "who": made.created_by,
    }]
    later = store.create(meta("other"))
    assert next(later.journal.events())["time"] == NOW.timestamp()  # default: meta.created


def test_creating_an_existing_id_is_refused(store: Store, meta: MakeMeta) -> None:
    made = meta()
    store.create(made)

    with pytest.raises(StateError, match=f"rollout {made.id} already exists"):
        store.create(made)
    assert [m.id for m in store.list()] == [made.id]


def test_open_takes_an_id_or_a_unique_prefix(store: Store, meta: MakeMeta) -> None:
    brain = store.create(meta("brain-api"))
    search = store.create(meta("search-api"))

    assert store.open(brain.id).id == brain.id
    assert store.open("search").id == search.id
    assert store.open("brain-api-2024").id == brain.id


def test_an_ambiguous_prefix_names_the_candidates(store: Store, meta: MakeMeta) -> None:
    first = store.create(meta())
    second = store.create(meta(minutes=60))

    with pytest.raises(StateError, match="'brain' is ambiguous") as caught:
        store.open("brain")
    assert first.id in str(caught.value) and second.id in str(caught.value)


def test_an_unknown_id_names_the_known_ones(store: Store, meta: MakeMeta) -> None:
    with pytest.raises(StateError, match=r"no rollout 'brain'.*there are no rollouts yet"):
        store.open("brain")
    known = store.create(meta())

    with pytest.raises(StateError, match=f"no rollout 'search'.*known rollouts: {known.id}"):
        store.open("search")
    with pytest.raises(StateError, match="no rollout ''"):
        store.open("")


def test_list_is_oldest_first(store: Store, meta: MakeMeta) -> None:
    assert store.list() == []
    late = store.create(meta("a-plan", minutes=60 * 24))
    early = store.create(meta("z-plan"))
    also_early = store.create(meta("b-plan"))

    assert [m.id for m in store.list()] == [
        *sorted([early.id, also_early.id]), late.id]  # same time: by id


# --- journal --------------------------------------------------------------------------

def test_appends_are_numbered_in_order_and_read_back_as_stored(
    store: Store, meta: MakeMeta
) -> None:
    rollout = store.create(meta(), time=10.0)
    journal = rollout.journal

    stored = [
        journal.append({"type": "stage-started", "stage": 0}, time=11.5),
        journal.append({"type": "measured", "values": {"rate": 0.97}}, time=12),
        journal.append({"type": "note", "text": "line\nbreak"}, time=12),
    ]

    assert stored[0] == {"seq": 2, "time": 11.5, "type": "stage-started", "stage": 0}
    assert [event["seq"] for event in stored] == [2, 3, 4]
    assert list(journal.events())[1:] == stored
    assert list(store.open(rollout.id).journal.events())[1:] == stored  # as others read it


def test_events_after_a_seq_are_the_ones_that_follow_it(store: Store, meta: MakeMeta) -> None:
    journal = store.create(meta()).journal
    for n in (2, 3, 4):
        journal.append({"type": "ok", "n": n}, time=float(n))

    assert [event["seq"] for event in journal.events(after_seq=2)] == [3, 4]
    assert list(journal.events(after_seq=4)) == []
    with pytest.raises(StateError, match="ends at seq 4 but the snapshot covers seq 7"):
        list(journal.events(after_seq=7))


@pytest.mark.parametrize(("event", "time", "complaint"), [
    ({"stage": "x"}, 1.0, "needs a non-empty string 'type'"),
    ({"type": "x", "seq": 9}, 1.0, "which the journal assigns"),
    ({"type": "x", "time": 2.0}, 1.0, "which the journal assigns"),
    ({"type": "x"}, "now", "finite number for time"),
    ({"type": "x"}, float("inf"), "finite number for time"),
    ({"type": "x", "rate": float("nan")}, 1.0, "cannot be journaled as JSON"),
    ({"type": "x", "when": datetime.now(UTC)}, 1.0, "cannot be journaled as JSON"),
])
def test_an_event_that_cannot_be_journaled_is_refused_and_nothing_stored(
    store: Store, meta: MakeMeta, event: dict[str, object], time: float, complaint: str
) -> None:
    journal = store.create(meta()).journal

    with pytest.raises(ValueError, match=complaint):
        journal.append(event, time=time)
    assert [e["seq"] for e in journal.events()] == [1]
    assert journal.append({"type": "note"}, time=2.0)["seq"] == 2


def test_a_sound_journal_needs_no_repair(store: Store, meta: MakeMeta) -> None:
    rollout = store.create(meta())

    assert rollout.journal.repair() is None
    assert [e["type"] for e in rollout.journal.events()] == ["created"]


# --- snapshots ------------------------------------------------------------------------

def test_a_snapshot_round_trips_and_the_last_one_wins(store: Store, meta: MakeMeta) -> None:
    rollout = store.create(meta())
    assert rollout.load_snapshot() is None

    rollout.save_snapshot({"stage": 1, "captures": {"test_id": "t1"}}, seq=1)
    rollout.save_snapshot({"stage": 2}, seq=1)

    snapshot = store.open(rollout.id).load_snapshot()
    assert snapshot is not None
    assert (snapshot.seq, snapshot.state) == (1, {"stage": 2})


def test_a_state_that_is_not_json_is_refused_and_the_old_snapshot_kept(
    store: Store, meta: MakeMeta
) -> None:
    rollout = store.create(meta())
    rollout.save_snapshot({"stage": 1}, seq=1)

    with pytest.raises(ValueError, match="cannot be saved as JSON"):
        rollout.save_snapshot({"when": datetime.now()}, seq=1)
    snapshot = rollout.load_snapshot()
    assert snapshot is not None and snapshot.state == {"stage": 1}


# --- locks ----------------------------------------------------------------------------

def test_a_lock_names_its_holder_and_a_second_one_is_refused_with_that_record(
    store: Store, meta: MakeMeta
) -> None:
    rollout = store.create(meta())
    assert rollout.lock_holder() is None

    with rollout.lock("advance") as held:
        record = held.record
        assert record is not None and held.id == record["id"]
        assert {"id", "path", "operation", "who", "pid", "version", "created"} <= set(record)
        assert (record["operation"], record["who"], record["pid"]) == (
            "advance", who(), os.getpid())
        assert rollout.lock_holder() == record
        with pytest.raises(LockedError) as refused:
            store.open(rollout.id).lock("rollback").acquire()

    assert refused.value.exit_code == 4
    assert refused.value.record == record
    message = str(refused.value)
    assert message.startswith(f"rollout {rollout.id} is locked by another command.")
    assert f"ID:        {record['id']}" in message and "Operation: advance" in message


def test_a_lock_is_released_on_exit_even_by_an_error(store: Store, meta: MakeMeta) -> None:
    rollout = store.create(meta())

    with pytest.raises(RuntimeError), rollout.lock("advance"):
        raise RuntimeError("the command failed")

    assert rollout.lock_holder() is None
    assert store.held_locks() == []
    with rollout.lock("resume") as again:
        assert again.record is not None


def test_held_locks_are_every_rollout_and_plan_lock(store: Store, meta: MakeMeta) -> None:
    rollout = store.create(meta())

    with rollout.lock("advance") as of_rollout, store.lock_plan("search-api", "rollback") as of_plan:
        assert sorted(record["id"] for record in store.held_locks()) == sorted(
            [of_rollout.id, of_plan.id])
    assert store.held_locks() == []


def test_unlock_by_id_frees_the_lock_and_the_old_holder_leaves_the_new_one_alone(
    store: Store, meta: MakeMeta
) -> None:
    rollout = store.create(meta())
    first = rollout.lock("advance")
    record = first.acquire()

    assert store.unlock(record["id"]) == record        # an operator force-unlocked it...
    second = rollout.lock("rollback")
    second.acquire()                                   # ...and another command took it
    first.release()

    assert rollout.lock_holder() == second.record
    second.release()
    assert rollout.lock_holder() is None


def test_unlock_of_an_unknown_id_names_the_held_locks(store: Store, meta: MakeMeta) -> None:
    with pytest.raises(StateError, match=r"no lock with id 'nope'.*; no locks are held"):
        store.unlock("nope")
    with store.lock_plan("brain-api", "rollback") as held, pytest.raises(
            StateError, match=f"held locks: {held.id}"):
        store.unlock("nope")


def test_plan_locks_exclude_each_other_only(store: Store) -> None:
    with store.lock_plan("brain-api", "rollback") as first:
        with pytest.raises(LockedError, match="plan brain-api is locked") as refused:
            store.lock_plan("brain-api", "start").acquire()
        assert refused.value.record["id"] == first.id
        with store.lock_plan("other-plan", "rollback"):
            pass
        assert first.id is not None
        store.unlock(first.id)
    with store.lock_plan("brain-api", "rollback"):
        pass


def test_a_takeover_note_says_whose_stale_lock_was_taken(store: Store, meta: MakeMeta) -> None:
    rollout = store.create(meta())
    stale = {"id": "1f0c", "who": "bob@ci-7", "pid": 42, "operation": "resume",
             "created": "2024-05-01T10:00:00Z"}

    with rollout.lock("resume", journal_takeover=False):
        rollout.note_takeover(stale)

    assert list(rollout.journal.events())[-1]["text"] == (
        "took over the stale lock 1f0c of bob@ci-7 pid 42 (resume, created 2024-05-01T10:00:00Z)")


# --- claims: one active rollout per plan ---------------------------------------------

def test_a_start_claims_its_plan_and_a_second_start_is_refused_with_nothing_made(
    store: Store, meta: MakeMeta
) -> None:
    first = store.start(meta())
    search = store.start(meta("search-api"))
    store.create(meta("idle-plan"))                   # created, not started: claims nothing

    with pytest.raises(PlanClaimed, match=f"already has an active rollout, {first.id}") as refused:
        store.start(meta(minutes=1))

    assert refused.value.holder == first.id
    assert [m.id for m in store.find_active()] == [first.id, search.id]
    assert sorted(m.plan_name for m in store.list()) == ["brain-api", "idle-plan", "search-api"]
    assert store.held_locks() == []                   # the plan's lock was let go


def test_only_the_holder_releases_a_claim(store: Store, meta: MakeMeta) -> None:
    first = store.start(meta())
    second = meta(minutes=60)

    assert store.release_active("brain-api", second.id) is False
    assert [m.id for m in store.find_active()] == [first.id]
    assert store.release_active("brain-api", first.id) is True
    assert store.release_active("brain-api", first.id) is False
    assert store.find_active() == []
    assert store.start(second).id == second.id
    assert [m.id for m in store.find_active()] == [second.id]


def test_a_start_releases_the_claim_of_a_rollout_that_ended(store: Store, meta: MakeMeta) -> None:
    first = store.start(meta())

    second = store.start(meta(minutes=60), finished=lambda rollout: rollout.id == first.id)

    assert [m.id for m in store.find_active()] == [second.id]
    assert list(second.journal.events())[-1]["text"] == (
        f"released the claim of rollout {first.id}, which had ended without releasing it")


def test_a_start_waits_for_the_plans_lock_then_gives_up(store: Store, meta: MakeMeta) -> None:
    with store.lock_plan("brain-api", "rollback"), pytest.raises(
            LockedError, match="plan brain-api is locked"):
        store.start(meta(), timeout=0.0)
    assert store.list() == [] and store.find_active() == []


# --- leases ---------------------------------------------------------------------------

def test_a_lease_is_taken_renewed_and_refused_to_another_while_live(
    store: Store, meta: MakeMeta
) -> None:
    rollout = store.create(meta())
    agent, other = Driver.here("agent a"), Driver.here("agent b")
    assert rollout.lease() is None

    taken = rollout.take_lease(agent, ttl=15, now=1000.0)
    renewed = rollout.take_lease(agent, ttl=15, now=1010.0)
    refused = rollout.take_lease(other, ttl=15, now=1024.9)

    assert taken == Lease(agent, 1, 1015.0)
    assert renewed == Lease(agent, 1, 1025.0)  # a renewal keeps the token
    assert refused is None
    assert store.open(rollout.id).lease() == renewed


def test_an_expired_lease_passes_to_another_driver_with_a_higher_token(
    store: Store, meta: MakeMeta
) -> None:
    rollout = store.create(meta())
    dead, taker = Driver.here("agent a"), Driver.here("agent b")
    rollout.take_lease(dead, ttl=15, now=1000.0)

    taken = rollout.take_lease(taker, ttl=15, now=1015.0)

    assert taken == Lease(taker, 2, 1030.0)
    assert rollout.take_lease(dead, ttl=15, now=1016.0) is None  # replaced: it must stop


def test_only_the_holder_releases_a_lease_and_then_anyone_may_take_it(
    store: Store, meta: MakeMeta
) -> None:
    rollout = store.create(meta())
    agent, other = Driver.here("agent a"), Driver.here("agent b")
    rollout.take_lease(agent, ttl=15, now=1000.0)

    assert rollout.release_lease(other) is False
    assert rollout.release_lease(agent) is True
    assert rollout.release_lease(agent) is False
    assert not rollout.lease().live(1001.0)
    assert rollout.take_lease(other, ttl=15, now=1001.0) == Lease(other, 2, 1016.0)


# --- threads --------------------------------------------------------------------------

def test_one_store_serves_many_threads_as_an_agent_uses_it(store: Store, meta: MakeMeta) -> None:
    """An agent drives each rollout from a thread of its own (appends, under the rollout's
    lock), beside each rollout's lease heartbeat and readers, all through one store: every
    append stays one whole, numbered event and every lease read sees one."""
    rollouts = [store.create(meta(f"plan-{n}")) for n in range(8)]
    agent = Driver.here("agent a")
    failures: list[BaseException] = []

    def guarded(work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            except BaseException as problem:
                failures.append(problem)
        return run

    def drive(rollout: Rollout) -> None:
        with rollout.lock("run"):
            for n in range(40):
                rollout.journal.append({"type": "ok", "n": n}, time=float(n))

    def beat(rollout: Rollout) -> None:
        for n in range(40):
            assert rollout.take_lease(agent, ttl=15, now=1000.0 + n) is not None
            assert store.open(rollout.id).lease() is not None
            with pytest.raises(StateError, match="already exists"):   # rolled back
                store.create(rollout.meta)

    threads = [threading.Thread(target=guarded(lambda r=rollout, work=work: work(r)))
               for rollout in rollouts for work in (drive, beat)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    for rollout in rollouts:
        events = list(store.open(rollout.id).journal.events())
        assert [event["seq"] for event in events] == list(range(1, 42))
        assert [event["n"] for event in events[1:]] == list(range(40))
        assert rollout.lease() == Lease(agent, 1, 1054.0)


# --- news -----------------------------------------------------------------------------

def _reopened(store: Store, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    """The same location opened again: another process's, or another machine's, store."""
    return STORES[request.node.callspec.params["store"]](tmp_path, request)


def test_a_waiting_driver_hears_of_an_append_by_another_store_at_once(
    store: Store, meta: MakeMeta, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A driver naps between rounds; an operator's pause journaled elsewhere (another
    machine on PostgreSQL, another terminal on a directory) ends the nap, not its end."""
    rollout = store.create(meta())
    waiter = store.open(rollout.id)
    other = _reopened(store, tmp_path, request).open(rollout.id)
    heard = threading.Event()

    def nap() -> None:
        waiter.wait_for_news(1, 30.0, time.sleep)
        heard.set()

    napping = threading.Thread(target=nap, daemon=True)
    napping.start()
    assert not heard.wait(0.3)                      # nothing new yet: it naps
    appended = time.monotonic()
    other.journal.append({"type": "paused", "reason": "looking"}, time=5.0)

    assert heard.wait(5.0)                          # not the 30 s it was willing to wait
    assert time.monotonic() - appended < 1.0


def test_news_already_journaled_ends_a_nap_before_it_starts(
    store: Store, meta: MakeMeta
) -> None:
    rollout = store.create(meta())
    rollout.journal.append({"type": "paused"}, time=5.0)
    slept: list[float] = []

    store.open(rollout.id).wait_for_news(1, 30.0, slept.append)

    assert sum(slept) < 1.0


def test_a_nap_without_news_lasts_its_time(store: Store, meta: MakeMeta) -> None:
    """On the sleep it was given (a directory: nothing really sleeps here), or, for a store
    told of appends (PostgreSQL), waiting that long for one."""
    rollout = store.create(meta())
    rollout.journal.append({"type": "measured"}, time=5.0)
    slept: list[float] = []

    started = time.monotonic()
    rollout.wait_for_news(2, 0.5, slept.append)

    assert sum(slept) == pytest.approx(0.5) or time.monotonic() - started >= 0.5 - 0.01

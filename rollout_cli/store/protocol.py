"""What a command needs from rollout state, whatever holds it: the Store protocol.

    Store      every rollout: create, start (claiming its plan), open, list; the plan's
               claims and locks; every lock held
     └ Rollout one rollout: its metadata, journal, snapshot and lock
        ├ Journal   append-only events numbered by seq, read back after a seq
        ├ Lock      held on ``with``, refused with the holder's record (LockedError)
        └ Lease     who drives it (an agent, a follower), renewed while it works

The records they speak are here too, so that a store is written against this module
alone. ``tests/store/test_store_contract.py`` is what an implementation must pass; the
directory store (``directory.py``) is the reference, and ``location.py`` chooses one
from ``--state LOCATION``.
"""

from __future__ import annotations

import builtins
import hashlib
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from rollout_cli.errors import StateError
from rollout_cli.store.atomic import state_io
from rollout_cli.store.identity import who
from rollout_cli.store.lease import Driver, Lease
from rollout_cli.store.paths import check_name

Event = dict[str, Any]
LockRecord = dict[str, Any]

# How long `start` waits for another start of the same plan to finish creating its
# rollout (which holds the plan's lock for a few milliseconds).
START_LOCK_WAIT = 10.0


class PlanClaimed(StateError):
    """A plan already has an active rollout, ``holder``: only one may be active."""

    def __init__(self, message: str, holder: str | None):
        super().__init__(message)
        self.holder = holder


def some_ids(names: list[str], shown: int = 10) -> str:
    """The last ``shown`` of ``names``, and how many more: for errors that list them."""
    listed = ", ".join(names[-shown:])
    hidden = len(names) - shown
    return f"{listed} (and {hidden} more)" if hidden > 0 else listed


def new_rollout_id(plan_name: str, now: datetime) -> str:
    """``<plan-name>-<yyyymmdd-hhmmss>-<4 hex>``: sorts by time within a plan, easy to type."""
    check_name("plan name", plan_name)
    if now.tzinfo is not None:
        now = now.astimezone(UTC)  # ids made on different machines must sort together
    return f"{plan_name}-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def plan_digest(path: Path) -> str:
    """The sha256 of the plan file's bytes, in hex: which plan a rollout ran."""
    with state_io(f"read plan file {path}"), path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


@dataclass(frozen=True)
class RolloutMeta:
    id: str
    plan_name: str
    plan_path: str
    plan_digest: str
    created: datetime
    created_by: str

    @classmethod
    def for_plan(cls, plan_name: str, plan_path: Path, now: datetime) -> RolloutMeta:
        """The metadata of a new rollout of the plan in ``plan_path``, started ``now``."""
        return cls(
            id=new_rollout_id(plan_name, now),
            plan_name=plan_name,
            plan_path=str(plan_path.resolve()),
            plan_digest=plan_digest(plan_path),
            created=now if now.tzinfo else now.replace(tzinfo=UTC),
            created_by=who(),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "plan_name": self.plan_name,
            "plan_path": self.plan_path,
            "plan_digest": self.plan_digest,
            "created": self.created.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "created_by": self.created_by,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: object) -> RolloutMeta:
        """The metadata in ``data``; StateError naming ``source`` if it is incomplete."""
        fields = ("id", "plan_name", "plan_path", "plan_digest", "created", "created_by")
        missing = [name for name in fields if not isinstance(data.get(name), str)]
        if missing:
            raise StateError(f"rollout metadata {source} lacks {', '.join(missing)}")
        try:
            created = datetime.fromisoformat(data["created"])
        except ValueError as exc:
            raise StateError(f"rollout metadata {source} has a bad 'created': {exc}") from exc
        return cls(**{**{name: data[name] for name in fields}, "created": created})


def created_event(meta: RolloutMeta, details: Mapping[str, Any] | None = None) -> Event:
    """A rollout's first journal event: who created it from which plan."""
    return {
        "type": "created",
        "plan": meta.plan_name,
        "plan_file": meta.plan_path,
        "plan_digest": meta.plan_digest,
        "who": meta.created_by,
        **(details or {}),
    }


@dataclass(frozen=True)
class Snapshot:
    """The engine's state after folding every journal event up to and including ``seq``."""

    seq: int
    state: dict[str, Any]


@dataclass(frozen=True)
class Repair:
    """What ``Journal.repair`` moved aside: line ``line`` of ``journal``, a damaged last
    line of ``size`` bytes, now kept in ``side_file``."""

    line: int
    side_file: Path
    size: int
    journal: Path


class Journal(Protocol):
    """A rollout's events, in the order they happened. Appends have one writer: the
    command holding the rollout's lock."""

    def append(self, event: Mapping[str, Any], *, time: float) -> Event:
        """Store ``event`` at ``time`` with the next seq (the first is 1), durably before
        returning; the stored event, ``seq`` and ``time`` added. ValueError, nothing
        stored, for an event without a string ``type``, one setting ``seq`` or ``time``,
        or one that is not JSON."""
        ...

    def events(self, after_seq: int = 0) -> Iterator[Event]:
        """The events with seq > ``after_seq``, in order; StateError if the journal ends
        before ``after_seq`` (it lost events a snapshot has)."""
        ...

    def repair(self) -> Repair | None:
        """Set aside a last event that a crash cut short; None when there is none (always,
        for a store whose appends are all or nothing). Hold the rollout's lock."""
        ...


class Lock(Protocol):
    """The lock of a rollout or a plan, Terraform style: one holder, named by its record
    (id, path, operation, who, pid, version, created) to anyone refused."""

    timeout: float                   # how long ``acquire`` waits for a live holder
    record: LockRecord | None        # ours, while held
    took_over: LockRecord | None     # the stale lock ours replaced, if any

    @property
    def id(self) -> str | None: ...

    def acquire(self) -> LockRecord:
        """Take it, or raise LockedError with the holder's record after ``timeout``."""
        ...

    def release(self) -> None:
        """Let it go, unless it is no longer ours (unlocked by id since)."""
        ...

    def __enter__(self) -> Lock: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None: ...


class Rollout(Protocol):
    """One rollout in a store."""

    @property
    def id(self) -> str: ...

    @property
    def meta(self) -> RolloutMeta: ...

    @property
    def journal(self) -> Journal: ...

    def lock(self, operation: str, *, timeout: float = 0.0,
             journal_takeover: bool = True) -> Lock:
        """The rollout's lock, for ``operation``; taking over a stale one is journaled as a
        note unless ``journal_takeover`` is False (then ``note_takeover`` it later)."""
        ...

    def note_takeover(self, stale: LockRecord) -> None:
        """Journal that the stale lock ``stale`` was taken over (hold the lock)."""
        ...

    def lock_holder(self) -> LockRecord | None:
        """The record of whoever holds the rollout's lock now; None when nobody does."""
        ...

    def save_snapshot(self, state: Mapping[str, Any], seq: int) -> None:
        """Keep the engine's state after folding every event up to ``seq``, replacing the
        last one; ValueError, the old one kept, for a state that is not JSON."""
        ...

    def load_snapshot(self) -> Snapshot | None:
        """The last snapshot saved; None when there is none or it cannot be used (it only
        saves replay time: the journal is the record)."""
        ...

    def lease(self) -> Lease | None:
        """Who drives the rollout (``lease.py``): the last lease taken, live, expired or
        released (expired at once); None when none was ever taken."""
        ...

    def take_lease(self, driver: Driver, *, ttl: float, now: float) -> Lease | None:
        """Take the lease for ``driver`` until ``now + ttl``, or renew it if ``driver``
        holds it (``lease.next_lease``, applied atomically); None, nothing changed, while
        another driver's lease is live."""
        ...

    def release_lease(self, driver: Driver) -> bool:
        """End ``driver``'s lease so another may drive at once (``lease.released``: the
        token stays); False if it held none."""
        ...

    def wait_for_news(self, seq: int, timeout: float, sleep: Callable[[float], None]) -> None:
        """A driver's nap between rounds, cut short by news: return once the journal holds
        events after ``seq`` (an operator's pause or advance, from another process or
        machine), or after ``timeout`` seconds, slept with ``sleep`` (a store that is told
        of appends may wait on that instead)."""
        ...


class Store(Protocol):
    """Every rollout, and the rule that a plan has at most one active rollout.

    Rollout ids and plan names name things in the store: ``paths.check_name`` says which
    are allowed. Every failure is a StateError (PlanClaimed, StateWriteError when a write
    is refused) or a LockedError."""

    def create(self, meta: RolloutMeta, *, time: float | None = None,
               details: Mapping[str, Any] | None = None) -> Rollout:
        """A new rollout, whole or not at all: its metadata, and its journal holding the
        ``created`` event (with ``details``) at ``time`` (default: ``meta.created``).
        StateError if ``meta.id`` exists."""
        ...

    def start(self, meta: RolloutMeta, *, time: float | None = None,
              details: Mapping[str, Any] | None = None,
              finished: Callable[[Rollout], bool] = lambda rollout: False,
              timeout: float = START_LOCK_WAIT) -> Rollout:
        """``create`` the rollout as its plan's active one, holding the plan's lock (up to
        ``timeout`` for it). PlanClaimed, nothing created, while another rollout of the plan
        is active, unless ``finished`` says it has ended: then its claim is released and
        the new rollout's journal says so in a note."""
        ...

    def open(self, rollout_id: str) -> Rollout:
        """The rollout with this id, or the one whose id starts with it; StateError naming
        the candidates (ambiguous) or the known ids (none)."""
        ...

    def list(self) -> builtins.list[RolloutMeta]:
        """Every rollout's metadata, oldest first (ties by id)."""
        ...

    def find_active(self) -> builtins.list[RolloutMeta]:
        """The metadata of each plan's active rollout, by plan name."""
        ...

    def release_active(self, plan_name: str, rollout_id: str) -> bool:
        """End ``rollout_id``'s claim on its plan; False if it held none (safe to repeat,
        and never ends another rollout's claim)."""
        ...

    def lock_plan(self, plan_name: str, operation: str, *, timeout: float = 0.0) -> Lock:
        """The lock of a plan: held while a rollout of it is started, and by commands that
        act without a rollout (`rollout rollback --plan`)."""
        ...

    def held_locks(self) -> builtins.list[LockRecord]:
        """The record of every lock held, of rollouts and plans."""
        ...

    def unlock(self, lock_id: str) -> LockRecord:
        """Release the lock with this id, whoever holds it; its record. StateError naming
        the held locks if none has this id."""
        ...

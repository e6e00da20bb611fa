"""Rollout state: the Store protocol, its records, and the stores that implement it.

    store = open_store(location)        # --state LOCATION: a directory today
    rollout = store.start(RolloutMeta.for_plan(plan.name, plan_path, now))
    with rollout.lock("advance"):
        rollout.journal.append({"type": "stage-started", "stage": "canary-10"}, time=now)
        snapshot = rollout.load_snapshot()      # then journal.events(after_seq=snapshot.seq)
        rollout.save_snapshot(state, seq)

``protocol`` says what every store does; ``directory`` is the embedded default. Errors
are StateError (PlanClaimed, JournalCorrupt, and StateWriteError when a write is refused)
and LockedError; an OSError never escapes a public call.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rollout_cli.store.directory import DirectoryStore, RolloutDir
    from rollout_cli.store.journal import JournalCorrupt, JournalFile
    from rollout_cli.store.location import open_store
    from rollout_cli.store.locks import LockFile, is_stale, lock_info
    from rollout_cli.store.protocol import (
        Event,
        Journal,
        Lock,
        LockRecord,
        PlanClaimed,
        Repair,
        Rollout,
        RolloutMeta,
        Snapshot,
        Store,
        new_rollout_id,
        plan_digest,
    )
    from rollout_cli.store.snapshot import SnapshotUnreadable

# Each name is imported from its module on first use (PEP 562): importing a submodule such
# as rollout_cli.store.loading runs this file, and a simulation, which keeps its rollout
# in memory, should not pay for the journal, locks and snapshots it never touches.
_HOME = {
    **dict.fromkeys(("Event", "Journal", "Lock", "LockRecord", "PlanClaimed", "Repair",
                     "Rollout", "RolloutMeta", "Snapshot", "Store", "new_rollout_id",
                     "plan_digest"), "protocol"),
    "DirectoryStore": "directory", "RolloutDir": "directory",
    "JournalCorrupt": "journal", "JournalFile": "journal",
    "LockFile": "locks", "is_stale": "locks", "lock_info": "locks",
    "open_store": "location",
    "SnapshotUnreadable": "snapshot",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})


__all__ = [
    "DirectoryStore",
    "Event",
    "Journal",
    "JournalCorrupt",
    "JournalFile",
    "Lock",
    "LockFile",
    "LockRecord",
    "PlanClaimed",
    "Repair",
    "Rollout",
    "RolloutDir",
    "RolloutMeta",
    "Snapshot",
    "SnapshotUnreadable",
    "Store",
    "is_stale",
    "lock_info",
    "new_rollout_id",
    "open_store",
    "plan_digest",
]

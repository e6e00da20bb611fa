"""Rollout state on disk: an append-only journal, snapshots, metadata and locks.

    store = StateStore(resolve_state_dir(flag))
    rollout = store.start(RolloutMeta.for_plan(plan.name, plan_path, now))
    with store.lock(rollout.id, "advance"):
        rollout.journal.append({"type": "stage-started", "stage": "canary-10"}, time=now)
        saved = rollout.load()          # snapshot + tail_events for the engine to fold
        rollout.save_snapshot(state, seq)

Errors are StateError (JournalCorrupt, SnapshotUnreadable, and StateWriteError when the
disk refuses a write) and LockedError; an OSError never escapes a public call.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rollout_cli.store.journal import Event, Journal, JournalCorrupt, Repair
    from rollout_cli.store.locks import Lock, LockRecord, is_stale, lock_info
    from rollout_cli.store.paths import STATE_DIR_ENV, resolve_state_dir
    from rollout_cli.store.rollouts import (
        RolloutDir,
        RolloutMeta,
        SavedState,
        StateStore,
        new_rollout_id,
        plan_digest,
    )
    from rollout_cli.store.snapshot import Snapshot, SnapshotUnreadable

# Each name is imported from its module on first use (PEP 562): importing a submodule such
# as rollout_cli.store.loading runs this file, and a simulation, which keeps its rollout
# in memory, should not pay for the journal, locks and snapshots it never touches.
_HOME = {
    "Event": "journal", "Journal": "journal", "JournalCorrupt": "journal", "Repair": "journal",
    "Lock": "locks", "LockRecord": "locks", "is_stale": "locks", "lock_info": "locks",
    "STATE_DIR_ENV": "paths", "resolve_state_dir": "paths",
    "RolloutDir": "rollouts", "RolloutMeta": "rollouts", "SavedState": "rollouts",
    "StateStore": "rollouts", "new_rollout_id": "rollouts", "plan_digest": "rollouts",
    "Snapshot": "snapshot", "SnapshotUnreadable": "snapshot",
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
    "STATE_DIR_ENV",
    "Event",
    "Journal",
    "JournalCorrupt",
    "Lock",
    "LockRecord",
    "Repair",
    "RolloutDir",
    "RolloutMeta",
    "SavedState",
    "Snapshot",
    "SnapshotUnreadable",
    "StateStore",
    "is_stale",
    "lock_info",
    "new_rollout_id",
    "plan_digest",
    "resolve_state_dir",
]

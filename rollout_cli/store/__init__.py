"""Rollout state on disk: an append-only journal, snapshots, metadata and locks.

    store = StateStore(resolve_state_dir(flag))
    rollout = store.start(RolloutMeta.for_plan(plan.name, plan_path, now))
    with store.lock(rollout.id, "advance"):
        rollout.journal.append({"type": "stage-started", "stage": "canary-10"}, time=now)
        saved = rollout.load()          # snapshot + tail_events for the engine to fold
        rollout.save_snapshot(state, seq)

Errors are StateError (JournalCorrupt, SnapshotUnreadable) and LockedError; an OSError
never escapes a public call.
"""

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

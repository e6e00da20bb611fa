"""A rollout's state from its store: the snapshot plus the journal after it. Here, not in
the reconciler, so that commands that only look at a rollout import no network code."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollout_cli.engine.state import RolloutState, fold

if TYPE_CHECKING:
    from rollout_cli.store.protocol import Rollout


def load_state(rollout: Rollout, known: RolloutState | None = None) -> RolloutState:
    """A rollout's state: the snapshot plus the journal after it, or ``known`` plus news."""
    if known is not None:
        return fold(known, rollout.journal.events(after_seq=known.seq))
    snapshot = rollout.load_snapshot()
    if snapshot is None:
        state, after = RolloutState(id=rollout.meta.id, plan=rollout.meta.plan_name), 0
    else:
        state, after = RolloutState.from_json(dict(snapshot.state)), snapshot.seq
    return fold(state, rollout.journal.events(after_seq=after))

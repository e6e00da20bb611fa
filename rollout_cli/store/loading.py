"""A rollout's state from its store: the snapshot plus the journal after it. Here, not in
the reconciler, so that commands that only look at a rollout import no network code."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollout_cli.engine.state import RolloutState, fold

if TYPE_CHECKING:
    from rollout_cli.store.rollouts import RolloutDir


def load_state(rollout: RolloutDir, known: RolloutState | None = None) -> RolloutState:
    """A rollout's state: the snapshot plus the journal after it, or ``known`` plus news."""
    if known is not None:
        return fold(known, rollout.journal.events(after_seq=known.seq))
    saved = rollout.load()
    state = RolloutState(id=rollout.meta.id, plan=rollout.meta.plan_name)
    if saved.snapshot is not None:
        state = RolloutState.from_json(dict(saved.snapshot.state))
    return fold(state, saved.tail_events)

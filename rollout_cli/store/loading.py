"""A rollout's state from its store: the snapshot plus the journal after it. Here, not in
the reconciler, so that commands that only look at a rollout import no network code."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from rollout_cli.engine.events import Event, from_json
from rollout_cli.engine.state import RolloutState, apply, fold

if TYPE_CHECKING:
    from rollout_cli.store.protocol import Rollout


def events_of(records: Iterable[Mapping[str, Any]]) -> Iterator[Event]:
    """Journal lines as the engine's events."""
    return (from_json(record) for record in records)


def load_state(rollout: Rollout, known: RolloutState | None = None,
               news: Callable[[Event, RolloutState], None] | None = None) -> RolloutState:
    """A rollout's state: the snapshot plus the journal after it, or ``known`` plus what
    was journaled since (each told to ``news`` with the state it leads to)."""
    if known is not None:
        state = known
        for event in events_of(rollout.journal.events(after_seq=known.seq)):
            state = apply(state, event)
            if news is not None:
                news(event, state)
        return state
    snapshot = rollout.load_snapshot()
    if snapshot is None:
        state, after = RolloutState(id=rollout.meta.id, plan=rollout.meta.plan_name), 0
    else:
        state, after = RolloutState.from_json(dict(snapshot.state)), snapshot.seq
    return fold(state, events_of(rollout.journal.events(after_seq=after)))

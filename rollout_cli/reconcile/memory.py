"""A rollout kept in memory, for `rollout simulate`: the journal is not written or held.

It offers what the Reconciler uses of a RolloutDir and a StateStore; events go to the
event sink as they happen and are then forgotten, so a simulated week stays small.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MemoryMeta:
    id: str
    plan_name: str


class MemoryJournal:
    def __init__(self) -> None:
        self.seq = 0

    def append(self, event: dict[str, Any], *, time: float) -> dict[str, Any]:
        self.seq += 1
        return {"seq": self.seq, "time": time, **event}

    def events(self, after_seq: int = 0) -> Iterator[dict[str, Any]]:
        return iter(())


@dataclass(frozen=True)
class _Saved:
    snapshot: None = None
    tail_events: tuple[()] = ()
    warnings: tuple[()] = ()


@dataclass
class MemoryRollout:
    meta: MemoryMeta
    journal: MemoryJournal = field(default_factory=MemoryJournal)

    @property
    def id(self) -> str:
        return self.meta.id

    @contextmanager
    def lock(self, operation: str, **_: Any) -> Iterator[None]:
        yield None

    def load(self) -> _Saved:
        return _Saved()

    def save_snapshot(self, state: Any, seq: int) -> None:
        return None


class MemoryStore:
    def release_active(self, plan_name: str, rollout_id: str) -> bool:
        return True

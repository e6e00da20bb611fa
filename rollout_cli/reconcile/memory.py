"""A rollout kept in memory, for `rollout simulate`: the part of the Store protocol
(rollout_cli.store.protocol) that the Reconciler uses, and no more.

Its journal numbers events and hands them back, then forgets them: they go to the event
sink as they happen, so a simulated week stays small (keeping them would grow by about
25 MB a simulated day of 10-second rounds). One process drives it, so its lock is never
contended and there is nothing to claim.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MemoryMeta:
    id: str
    plan_name: str


class MemoryJournal:
    def __init__(self) -> None:
        self.seq = 0

    def append(self, event: Mapping[str, Any], *, time: float) -> dict[str, Any]:
        self.seq += 1
        return {"seq": self.seq, "time": time, **event}

    def events(self, after_seq: int = 0) -> Iterator[dict[str, Any]]:
        return iter(())


@dataclass
class MemoryRollout:
    meta: MemoryMeta
    journal: MemoryJournal = field(default_factory=MemoryJournal)

    @property
    def id(self) -> str:
        return self.meta.id

    def lock(self, operation: str, **_: Any) -> AbstractContextManager[None]:
        return nullcontext()

    def load_snapshot(self) -> None:
        return None

    def save_snapshot(self, state: Any, seq: int) -> None:
        return None

    def wait_for_news(self, seq: int, timeout: float, sleep: Callable[[float], None]) -> None:
        sleep(timeout)   # nobody else appends


class MemoryStore:
    def release_active(self, plan_name: str, rollout_id: str) -> bool:
        return False

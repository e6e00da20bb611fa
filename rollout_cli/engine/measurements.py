"""Recent measurements per metric, in bounded windows, as immutable values.

Adding a sample gives new Measurements and leaves the old ones as they were, so folding
an event never changes the state it started from. A 7-day rollout measured every 10 s
must not copy its windows on every event, though: each series is a view (start, end)
into a list that only ever grows at its end. A new sample is appended in place when the
view ends where the list does (nobody else can see past ``end``); a view that branched
off an older state copies its part first. Samples that aged out are dropped from the
list once they are most of it, so a long bake keeps the list's size bounded by its window.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rollout_cli.engine.checks import Sample

MAX_SAMPLES = 4096
# Samples that aged out stay in the list until they are this many and most of it: copying
# the live ones then costs about one copy per sample added, and a hundred rollouts' series
# do not each hold a thousand dead samples (an agent's memory would grow for hours).
DEAD_SLACK = 32


class Series:
    """One metric's samples, oldest first: ``items[start:end]``, never changed below end."""

    __slots__ = ("_end", "_items", "_start")

    def __init__(self, items: list[Sample] | None = None, start: int = 0,
                 end: int | None = None) -> None:
        self._items = items if items is not None else []
        self._start = start
        self._end = len(self._items) if end is None else end

    def add(self, sample: Sample, keep: float) -> Series:
        """These samples, plus ``sample``, less those older than ``keep`` before it."""
        items, start = self._items, self._start
        if self._end != len(items):          # an older state's view: branch off
            items, start = items[start:self._end], 0
        items.append(sample)
        end = len(items)
        horizon = sample.time - keep
        while end - start > 1 and (items[start].time < horizon or end - start > MAX_SAMPLES):
            start += 1
        if start > DEAD_SLACK and start * 2 > end:  # mostly dead: let the list shrink
            items, start, end = items[start:end], 0, end - start
        return Series(items, start, end)

    def samples(self) -> list[Sample]:
        return self._items[self._start:self._end]

    def last(self) -> Sample | None:
        return self._items[self._end - 1] if self._end > self._start else None

    def __len__(self) -> int:
        return self._end - self._start


class Measurements:
    """Every metric's series; immutable: ``add`` returns new Measurements."""

    __slots__ = ("_series",)

    def __init__(self, series: Mapping[str, Series] | None = None) -> None:
        self._series: dict[str, Series] = dict(series or {})

    def add(self, metric: str, sample: Sample, keep: float) -> Measurements:
        series = self._series.get(metric) or Series()
        return Measurements({**self._series, metric: series.add(sample, keep)})

    @property
    def empty(self) -> bool:
        """No sample of any metric yet."""
        return not self._series

    def of(self, metric: str) -> list[Sample]:
        series = self._series.get(metric)
        return series.samples() if series is not None else []

    def last(self, metric: str) -> Sample | None:
        series = self._series.get(metric)
        return series.last() if series is not None else None

    def to_json(self) -> dict[str, list[list[Any]]]:
        return {m: [[s.time, s.value, s.error] for s in series.samples()]
                for m, series in self._series.items()}

    @classmethod
    def from_json(cls, data: dict[str, list[list[Any]]]) -> Measurements:
        return cls({metric: Series([Sample(*row) for row in rows][-MAX_SAMPLES:])
                    for metric, rows in data.items()})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Measurements) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"Measurements({sum(len(s) for s in self._series.values())} samples)"

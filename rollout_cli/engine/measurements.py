"""Recent measurements per metric, in bounded windows.

This is the one mutable piece of the engine's state: a 7-day rollout measured every
10 s would otherwise copy its windows on every event. Samples only ever get appended
and aged out, and every consumer reads a consistent view within one fold.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from rollout_cli.engine.checks import Sample

MAX_SAMPLES = 4096


class Measurements:
    def __init__(self) -> None:
        self._series: dict[str, deque[Sample]] = {}

    def add(self, metric: str, sample: Sample, keep: float) -> None:
        series = self._series.setdefault(metric, deque(maxlen=MAX_SAMPLES))
        series.append(sample)
        horizon = sample.time - keep
        while len(series) > 1 and series[0].time < horizon:
            series.popleft()

    @property
    def empty(self) -> bool:
        """No sample of any metric yet."""
        return not self._series

    def of(self, metric: str) -> list[Sample]:
        return list(self._series.get(metric, ()))

    def last(self, metric: str) -> Sample | None:
        series = self._series.get(metric)
        return series[-1] if series else None

    def to_json(self) -> dict[str, list[list[Any]]]:
        return {m: [[s.time, s.value, s.error] for s in series]
                for m, series in self._series.items()}

    @classmethod
    def from_json(cls, data: dict[str, list[list[Any]]]) -> Measurements:
        found = cls()
        for metric, rows in data.items():
            found._series[metric] = deque((Sample(*row) for row in rows), maxlen=MAX_SAMPLES)
        return found

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Measurements) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"Measurements({sum(len(s) for s in self._series.values())} samples)"

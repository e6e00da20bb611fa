"""Every clock rollout reads: one module, three kinds, one way to read them (``now()``).

- ``ProcessClock``: what a real run decides by. The wall clock is read once, then the
  monotonic clock moves it, so a step of the wall clock (NTP, a resumed VM) neither stops
  analysis nor shortens a bake; journal times stay wall-clock seconds, comparable across
  machines.
- ``VirtualClock``: simulated time that moves only when told to (``advance``, or a
  ``sleep`` that returns at once), so a 48-hour rollout simulates in a second.
- ``ScaledClock``: the monotonic clock times a factor, for the sandbox in a demo (600: a
  real second is ten simulated minutes).

The reconcile loop runs on a ProcessClock or a VirtualClock (``now``, ``sleep``,
``catch_up``); the sandbox's model reads any of them through ``now``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds; only differences between readings mean anything, except for a
        ProcessClock, whose readings are wall-clock time."""
        ...


class ProcessClock:
    """Wall-clock time that never steps within the process (see the module docstring)."""

    def __init__(self, wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.wall = wall
        self.sleep = sleep
        if monotonic is None and wall is not time.time:
            # One injected clock serves as both: a test's fake wall clock.
            self.monotonic, self._origin = wall, 0.0
        else:
            self.monotonic = monotonic or time.monotonic
            self._origin = wall() - self.monotonic()

    def now(self) -> float:
        return self.monotonic() + self._origin

    def catch_up(self, instant: float) -> float:
        """Move on to ``instant`` if it is later than now (a journal written ahead of this
        process's clock); returns how far this clock was behind."""
        behind = instant - self.now()
        if behind > 0:
            self._origin += behind
        return behind


class VirtualClock:
    """Simulated time that moves only when told to; never goes backwards."""

    def __init__(self, start: float = 0.0):
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError(f"cannot advance a clock by a negative amount ({seconds})")
        with self._lock:
            self._now += seconds
            return self._now

    def sleep(self, seconds: float) -> None:
        """What sleeping is on a simulated clock: the time passes, at once."""
        self.advance(max(0.0, seconds))

    def catch_up(self, instant: float) -> float:
        behind = instant - self._now
        if behind > 0:
            self.advance(behind)
        return behind


class ScaledClock:
    """Real elapsed time times ``time_scale`` (60: a real second is a simulated minute)."""

    def __init__(
        self,
        time_scale: float = 1.0,
        real: Callable[[], float] = time.monotonic,
        start: float = 0.0,
    ):
        if time_scale <= 0:
            raise ValueError(f"time scale must be positive, got {time_scale}")
        self.time_scale = float(time_scale)
        self._real = real
        self._origin = real()
        self._start = float(start)

    def now(self) -> float:
        return self._start + (self._real() - self._origin) * self.time_scale


__all__ = ["Clock", "ProcessClock", "ScaledClock", "VirtualClock"]

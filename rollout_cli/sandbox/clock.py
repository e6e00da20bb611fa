"""Where the sandbox's model reads the time from, and nowhere else.

A ``VirtualClock`` moves only when a test or a simulation advances it, so hours of
traffic pass without sleeping. A ``ScaledClock`` follows the real monotonic clock
times a factor, so a 2-hour bake can pass in seconds during a demo.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Simulated seconds; only differences between readings mean anything."""
        ...


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

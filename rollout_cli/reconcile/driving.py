"""A driver's hold on a rollout: its lease, taken before it drives, renewed by a heartbeat.

A driver (an agent's thread, a `resume --follow`, a `start --follow`) takes the rollout's
lease (``store/lease.py``) before it acts and renews it every ``ttl / 3`` from a thread of
its own, so that a call that takes long (a step retried for minutes) does not let the
lease lapse. A renewal that is refused, or that finds another token than the one taken,
means another driver took the rollout over: ``lost`` is set and the reconciler stops
driving at once. ``release`` ends the lease when the driver stops, so that another may
drive without waiting for it to expire.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rollout_cli.store.lease import LEASE_TTL, Driver, Lease

if TYPE_CHECKING:
    from rollout_cli.store.protocol import Rollout

# Tests and the takeover bench shorten the lease; operators keep the default.
TTL_ENV = "ROLLOUT_LEASE_TTL"


def lease_ttl(env: dict[str, str] | None = None) -> float:
    """The lease time: ``$ROLLOUT_LEASE_TTL`` seconds if set (a hidden knob for tests),
    else LEASE_TTL."""
    value = (os.environ if env is None else env).get(TTL_ENV)
    try:
        ttl = float(value) if value else LEASE_TTL
    except ValueError:
        return LEASE_TTL
    return ttl if ttl > 0 else LEASE_TTL


@dataclass
class Driving:
    rollout: Rollout
    driver: Driver
    ttl: float = LEASE_TTL
    now: Callable[[], float] = time.time
    lease: Lease | None = None
    lost: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _beat: threading.Thread | None = None

    def check(self) -> bool:
        """Whether this driver may act now: it holds the lease, and the lease is fresh. A
        lease the heartbeat left to age (the process was stopped, or starved) is renewed
        first, which fails, setting ``lost``, when another driver took it meanwhile."""
        if self.lease is None or self.lost.is_set():
            return False
        if self.now() < self.lease.expires - self.ttl / 3:
            return True
        return self.renew()

    def take(self) -> Lease | None:
        """Take (or renew) the lease; start the heartbeat. None while another driver's
        lease is live (then ``holder`` says whose)."""
        lease = self.rollout.take_lease(self.driver, ttl=self.ttl, now=self.now())
        if lease is None:
            return None
        self.lease = lease
        self.lost.clear()
        if self._beat is None or not self._beat.is_alive():
            self._stop.clear()
            self._beat = threading.Thread(target=self._heartbeat, daemon=True,
                                          name=f"lease {self.rollout.id}")
            self._beat.start()
        return lease

    def holder(self) -> Lease | None:
        """The lease as the store has it now (whoever holds it)."""
        return self.rollout.lease()

    def renew(self) -> bool:
        """One heartbeat: False (and ``lost`` set) once another driver has the rollout."""
        if self.lease is None or self.lost.is_set():
            return False
        try:
            lease = self.rollout.take_lease(self.driver, ttl=self.ttl, now=self.now())
        except Exception:   # a store that fails a beat: the next one tries again
            return True
        if lease is None or lease.token != self.lease.token:
            self.lost.set()
            return False
        self.lease = lease
        return True

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl / 3) and self.renew():
            pass

    def release(self) -> None:
        """Stop the heartbeat and give the lease up (if it is still ours)."""
        self._stop.set()
        if self._beat is not None and self._beat is not threading.current_thread():
            self._beat.join(timeout=5.0)
        if self.lease is not None and not self.lost.is_set():
            with contextlib.suppress(Exception):   # else it expires by itself within ttl
                self.rollout.release_lease(self.driver)
        self.lease = None

"""Who drives a rollout: a lease that one driver (an agent, or a follower) holds at a time.

A driver takes a rollout's lease for ``ttl`` seconds and renews it while it works (a
heartbeat); a driver that dies stops renewing, and once the lease has expired another may
take it. Each change of hands raises the lease's ``token`` (a fencing token: a driver
that finds a higher token than its own has been replaced and must stop). Lease times are
wall-clock epoch seconds, because drivers on different machines compare them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rollout_cli.store.identity import who

# How long a lease lasts without a renewal: a dead driver's rollouts wait this long at
# most before another driver takes them over.
LEASE_TTL = 15.0


@dataclass(frozen=True)
class Driver:
    """A process that drives rollouts: ``name`` says what it is (``agent eu-1``,
    ``resume --follow``), ``who`` is user@host; ``id`` tells it from every other."""

    name: str
    who: str
    pid: int
    id: str

    @classmethod
    def here(cls, name: str) -> Driver:
        """This process, as a driver called ``name``."""
        return cls(name=name, who=who(), pid=os.getpid(), id=secrets.token_hex(8))

    def gone(self) -> bool:
        """Whether it ran on this host and its process no longer exists (SIGKILL, a
        crash): its lease is no longer live, as a dead process's lock is stale."""
        from rollout_cli.store.locks import is_stale

        return is_stale({"pid": self.pid, "who": self.who})

    def describe(self) -> str:
        """``agent eu-1 ops@host-a, pid 4242``: how status names it."""
        return f"{self.name} {self.who}, pid {self.pid}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "who": self.who, "pid": self.pid, "id": self.id}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Driver:
        return cls(name=str(data["name"]), who=str(data["who"]), pid=int(data["pid"]),
                   id=str(data["id"]))


@dataclass(frozen=True)
class Lease:
    """``driver`` drives the rollout until ``expires`` unless it renews; ``token`` rises
    each time the lease changes hands."""

    driver: Driver
    token: int
    expires: float

    def live(self, now: float) -> bool:
        return now < self.expires and not self.driver.gone()

    def to_json(self) -> dict[str, Any]:
        return {"driver": self.driver.to_json(), "token": self.token, "expires": self.expires}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Lease:
        return cls(driver=Driver.from_json(data["driver"]), token=int(data["token"]),
                   expires=float(data["expires"]))


def next_lease(current: Lease | None, driver: Driver, ttl: float, now: float) -> Lease | None:
    """The lease after ``driver`` asks for it at ``now``: renewed (same token) if it holds
    it, taken (token + 1) if nobody holds a live one; None while another driver's is live.
    The one rule every store applies inside its own atomic update."""
    if current is not None and current.driver.id == driver.id:
        return Lease(driver, current.token, now + ttl)
    if current is not None and current.live(now):
        return None
    return Lease(driver, (current.token if current else 0) + 1, now + ttl)


def released(current: Lease | None, driver: Driver) -> Lease | None:
    """The lease after ``driver`` gives it up: expired at once, its token kept so that the
    next is higher; None (nothing to write) if ``driver`` held no live-or-expired lease.
    Applied, like next_lease, inside each store's atomic update."""
    if current is None or current.driver.id != driver.id or not current.expires:
        return None
    return Lease(driver, current.token, 0.0)

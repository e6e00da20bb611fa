"""The agent's drivers: a thread per active rollout, each an ordinary driver
(``operations.drive``) under the agent's identity, ``agent NAME``.

The store is polled every second for rollouts that became active (a `rollout start` that
handed over at its first wait); a rollout that ended is dropped with its thread. A driver
that another driver holds off (a `resume --follow`, another agent) only watches and takes
the rollout over when that driver's lease expires. A driver that fails (the plan file
changed or is gone, the state is damaged) is logged and tried again a little later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rollout_cli.errors import RolloutError
from rollout_cli.store.lease import Driver

POLL = 1.0
RETRY_AFTER = 30.0
# How long a driver waits for an operator's command holding a rollout's lock.
LOCK_WAIT = 60.0


@dataclass
class Supervisor:
    store: Any
    name: str
    env: dict[str, str]
    log: Callable[[str], None]
    stop: threading.Event = field(default_factory=threading.Event)
    poll: float = POLL
    driver: Driver = field(init=False)
    threads: dict[str, threading.Thread] = field(default_factory=dict)
    _retry_at: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.driver = Driver.here(f"agent {self.name}")

    def context(self, **options: Any) -> Any:
        """An operations Context on the agent's store, for one driver or one action."""
        from rollout_cli.operations import Context

        return Context(self.store, LOCK_WAIT, env=self.env,
                       should_stop=self.stop.is_set, warn=self.log, **options)

    def run(self) -> None:
        """Scan until stopped, then wait for the drivers to let their rollouts go."""
        while not self.stop.is_set():
            try:
                self.scan()
            except RolloutError as problem:    # an unreadable store: say so, keep trying
                self.log(f"cannot list the rollouts: {problem}")
            self.stop.wait(self.poll)
        for thread in list(self.threads.values()):
            thread.join(timeout=30.0)

    def scan(self) -> None:
        """Start a driver for every active rollout that has none."""
        now = time.monotonic()
        for meta in self.store.find_active():
            thread = self.threads.get(meta.id)
            if thread is not None and thread.is_alive():
                continue
            if self._retry_at.get(meta.id, 0.0) > now or self.stop.is_set():
                continue
            thread = threading.Thread(target=self._drive, args=(meta.id,), daemon=True,
                                      name=f"drive {meta.id}")
            self.threads[meta.id] = thread
            thread.start()
        for rollout_id, thread in list(self.threads.items()):
            if not thread.is_alive():
                del self.threads[rollout_id]

    def _drive(self, rollout_id: str) -> None:
        from rollout_cli import operations
        from rollout_cli.render.rollout_view import describe_event

        def on_event(event: Any, state: Any) -> None:
            self.log(f"{rollout_id}  {describe_event(event).strip()}")

        ctx = self.context(
            on_event=on_event,
            on_watch=lambda lease: self.log(
                f"{rollout_id}  driven by {lease.driver.describe()}: watching"),
            on_lock_wait=lambda subject, holder: self.log(
                f"{rollout_id}  waiting for {holder.get('operation')} "
                f"(pid {holder.get('pid')}, {holder.get('who')}) to release the lock"))
        self.log(f"{rollout_id}  driving")
        try:
            result = operations.drive(ctx, rollout_id, self.driver)
        except Exception as problem:   # one rollout's failure must not stop the others
            self._retry_at[rollout_id] = time.monotonic() + RETRY_AFTER
            self.log(f"{rollout_id}  cannot drive it ({problem}); trying again in "
                     f"{RETRY_AFTER:g}s" if isinstance(problem, RolloutError) else
                     f"{rollout_id}  driver failed: {type(problem).__name__}: {problem}")
            return
        if self.stop.is_set():
            self.log(f"{rollout_id}  let go ({result.state.phase})")
        else:
            self.log(f"{rollout_id}  {result.state.phase}"
                     + (f": {result.state.reason}" if result.state.reason else ""))

    def leases(self) -> list[str]:
        """The rollouts whose live lease this agent holds."""
        now = time.time()
        held = []
        for meta in self.store.find_active():
            lease = self.store.open(meta.id).lease()
            if lease is not None and lease.driver.id == self.driver.id and lease.live(now):
                held.append(meta.id)
        return held

"""The reconcile loop: load state, ask the engine what is due, do it, journal it, repeat.

Each tick takes the rollout's lock, catches up with events other processes journaled
(an `advance` from another terminal), and lets it go before waiting, so a follower never
blocks an operator. Before a call the intent is journaled, after it the outcome: a
process killed anywhere loses nothing, and the engine decides on resume whether the
call may be sent again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rollout_cli.engine import (
    Call,
    Decision,
    Finished,
    Measure,
    Policy,
    Record,
    RolloutState,
    Wait,
    apply,
    decide,
)
from rollout_cli.engine.measurements import Measurements
from rollout_cli.engine.state import replace
from rollout_cli.reconcile.executor import Executor
from rollout_cli.store.loading import load_state

if TYPE_CHECKING:  # a simulation keeps its rollout in memory and never needs the store
    from rollout_cli.store import RolloutDir, StateStore

SNAPSHOT_EVERY = 200
MAX_NAP = 1.0

EventSink = Callable[[dict[str, Any], RolloutState], None]


@dataclass
class Clock:
    now: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep


@dataclass
class Reconciler:
    store: StateStore
    rollout: RolloutDir
    executor: Executor
    policy: Policy = field(default_factory=Policy)
    clock: Clock = field(default_factory=Clock)
    on_event: EventSink = lambda event, state: None
    lock_timeout: float = 0.0
    operation: str = "run"
    max_nap: float = MAX_NAP
    state: RolloutState | None = None
    _appended: int = 0
    _since_snapshot: int = 0

    def load(self) -> RolloutState:
        """Catch up with everything journaled so far, by us or by another process."""
        self.state = load_state(self.rollout, self.state)
        return self.state

    def record(self, event: dict[str, Any]) -> RolloutState:
        """Journal one event (durably) and fold it into the state."""
        state = self.state if self.state is not None else self.load()
        # Raises IllegalTransition before anything is written. The trial gets empty
        # measurements of its own: they are the state's one mutable part, and folding the
        # event into them twice would record every sample twice (the journal has it once).
        now = self.clock.now()
        expected = {**event, "seq": state.seq + 1, "time": now}
        trial = apply(replace(state, measurements=Measurements()), expected)
        stored = self.rollout.journal.append(event, time=now)
        if stored == expected and trial.measurements.empty:
            # The journal stored what the trial folded, and the event left the measurements
            # alone: the trial is the new state once it has the real ones back.
            self.state = replace(trial, measurements=state.measurements)
        else:
            self.state = apply(state, stored)
        self._after_append()
        self.on_event(stored, self.state)
        return self.state

    def _after_append(self) -> None:
        self._appended += 1
        self._since_snapshot += 1
        if self._since_snapshot >= SNAPSHOT_EVERY:
            self.snapshot()

    def snapshot(self) -> None:
        if self.state is not None and self.state.seq and self._since_snapshot:
            self.rollout.save_snapshot(self.state.to_json(), self.state.seq)
            self._since_snapshot = 0

    def tick(self, locked: bool = False) -> Decision:
        """Do everything that is due now; return the Wait or Finished that stops us.

        ``locked``: the caller holds the rollout's lock already (an operator's events and
        the work they start, under one hold).
        """
        with nullcontext() if locked else self.rollout.lock(self.operation,
                                                            timeout=self.lock_timeout):
            state = self.load()
            while True:
                decision = decide(self.executor.plan, state, self.clock.now(), self.policy)
                if isinstance(decision, Record):
                    state = self.record(decision.event)
                elif isinstance(decision, Call):
                    state = self._call(decision, state)
                elif isinstance(decision, Measure):
                    state = self.record(self.executor.measure(decision, state, self.clock.now()))
                else:
                    self.snapshot()
                    if isinstance(decision, Finished):
                        self.store.release_active(self.rollout.meta.plan_name, self.rollout.id)
                    return decision

    def _call(self, call: Call, state: RolloutState) -> RolloutState:
        prepared = self.executor.prepare(call, state)
        self.record({"type": "intent", "call_id": call.call_id, "kind": call.kind,
                     "stage": call.stage, "step": call.step, "line": prepared.line,
                     "idempotent": prepared.idempotent})
        return self.record(self.executor.perform(call, prepared))

    def run(self, follow: bool, stop_when_paused: bool = False,
            deadline: float | None = None) -> Decision:
        """Tick until the rollout ends or (without follow) must wait.

        Following, it waits at gates and pauses for a person acting from another terminal,
        except with ``stop_when_paused`` (a CI run has nobody to wait for).
        """
        while True:
            decision = self.tick()
            if isinstance(decision, Finished) or not follow:
                return decision
            assert isinstance(decision, Wait)
            if stop_when_paused and decision.on_person and self.state is not None and (
                    self.state.phase == "paused"):
                return decision
            if deadline is not None and self.clock.now() >= deadline:
                return decision
            self._nap(decision)

    def _nap(self, wait: Wait) -> None:
        # Short naps: another process may journal an advance, pause or rollback meanwhile.
        remaining = self.max_nap if wait.until is None else wait.until - self.clock.now()
        self.clock.sleep(max(0.0, min(self.max_nap, remaining)))

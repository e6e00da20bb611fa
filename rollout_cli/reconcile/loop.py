"""The reconcile loop: load state, ask the engine what is due, do it, journal it, repeat.

Each tick takes the rollout's lock, catches up with events other processes journaled
(an `advance` from another terminal), and lets it go before waiting, so a follower never
blocks an operator; a follower that finds an operator's command holding the lock waits
for it. Before a call the intent is journaled, after it the outcome: a process killed
anywhere loses nothing, and the engine decides on resume whether the call may be sent
again.

A driver (``driving``: an agent's thread, a follower) holds the rollout's lease while it
drives (``driving.py``); finding another driver's live lease it only watches (catching up
with the journal, told through ``on_watch``) and takes over once that lease has expired;
when its own lease is taken it stops driving at once and watches again.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rollout_cli.clock import ProcessClock, VirtualClock
from rollout_cli.engine import (
    Call,
    Decision,
    Event,
    Finished,
    Measure,
    Policy,
    Record,
    RolloutState,
    Wait,
    apply,
    decide,
    from_json,
)
from rollout_cli.engine.events import Intent, Note
from rollout_cli.engine.phases import TERMINAL
from rollout_cli.errors import LockedError
from rollout_cli.plan.durations import format_duration
from rollout_cli.reconcile.executor import Executor
from rollout_cli.store.identity import who
from rollout_cli.store.loading import load_state

if TYPE_CHECKING:  # a simulation keeps its rollout in memory and never needs the store
    from rollout_cli.reconcile.driving import Driving
    from rollout_cli.store.lease import Lease
    from rollout_cli.store.protocol import Rollout, Store

SNAPSHOT_EVERY = 200
MAX_NAP = 1.0
# Clocks of different machines differ by a little; a resume behind by more is news.
CLOCK_NOTE_AFTER = 1.0
# How long a follower waits for a lock that a live process holds: an operator's advance or
# rollback keeps it while the work it starts runs (a stage's commands, a rollback's retries).
FOLLOWER_LOCK_WAIT = 1800.0

EventSink = Callable[[Event, RolloutState], None]


@dataclass
class Reconciler:
    store: Store
    rollout: Rollout
    executor: Executor
    policy: Policy = field(default_factory=Policy)
    clock: ProcessClock | VirtualClock = field(default_factory=ProcessClock)
    on_event: EventSink = lambda event, state: None
    # Events another process journaled (an operator's advance), seen when catching up.
    on_news: EventSink = lambda event, state: None
    lock_timeout: float = 0.0
    operation: str = "run"
    max_nap: float = MAX_NAP
    on_lock_wait: Callable[[dict[str, Any]], None] = lambda holder: None
    state: RolloutState | None = None
    # A driver's lease (None: a one-shot command, or a simulation): see driving.py.
    driving: Driving | None = None
    # Told the lease of the driver this one watches, each time another one drives.
    on_watch: Callable[[Lease], None] = lambda lease: None
    # Asked between ticks and naps: an agent's thread stops when its agent does.
    should_stop: Callable[[], bool] = lambda: False
    _since_snapshot: int = 0
    _watching: str | None = None

    def load(self) -> RolloutState:
        """Catch up with everything journaled so far, by us or by another process."""
        first = self.state is None
        self.state = load_state(self.rollout, self.state, self.on_news)
        # Journal times never go back: a clock behind the journal continues from its time.
        behind = self.clock.catch_up(self.state.updated)
        if first and behind > CLOCK_NOTE_AFTER:
            self.record(Note(text=(
                f"the clock of {who()} is {format_duration(behind)} behind this rollout's "
                "journal (a clock step, or another machine's clock); time continues from "
                "the journal's, and the gap does not count toward any bake")))
        return self.state

    def record(self, event: Event) -> RolloutState:
        """Journal one event (durably) and fold it into the state."""
        state = self.state if self.state is not None else self.load()
        # Raises IllegalTransition before anything is written; apply never changes its input.
        now = max(self.clock.now(), state.updated)
        expected = event.stamped(state.seq + 1, now)
        folded = apply(state, expected)
        stored = self.rollout.journal.append(event.to_json(), time=now)
        if (stored["seq"], stored["time"]) != (expected.seq, expected.time):
            expected = from_json(stored)   # the journal numbered it: another writer first
            folded = apply(state, expected)
        self.state = folded
        self._after_append()
        self.on_event(expected, self.state)
        return self.state

    def _after_append(self) -> None:
        self._since_snapshot += 1
        if self._since_snapshot >= SNAPSHOT_EVERY:
            self.snapshot()

    def snapshot(self) -> None:
        if self.state is not None and self.state.seq and self._since_snapshot:
            self.rollout.save_snapshot(self.state.to_json(), self.state.seq)
            self._since_snapshot = 0

    def tick(self, locked: bool = False, patient: bool = False) -> Decision:
        """Do everything that is due now; return the Wait or Finished that stops us.

        ``locked``: the caller holds the rollout's lock already (an operator's events and
        the work they start, under one hold). ``patient``: wait for a live holder's lock.
        """
        with nullcontext() if locked else self._hold() if patient else self.rollout.lock(
                self.operation, timeout=self.lock_timeout):
            state = self.load()
            while True:
                if self.driving is not None and not self.driving.check():
                    return Wait(None, "another driver took this rollout over")
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

    def _hold(self) -> ExitStack:
        """The lock, for a follower: a live holder (an operator's advance, pause or rollback
        from another terminal) is waited for, up to FOLLOWER_LOCK_WAIT or the lock timeout
        if longer, and named once through ``on_lock_wait``; a stale one (its process gone)
        is taken over by the lock itself, with a note in the journal."""
        held = ExitStack()
        deadline = None
        while True:
            try:
                held.enter_context(self.rollout.lock(self.operation))
                return held
            except LockedError as busy:
                from rollout_cli.store.locks import POLL_INTERVAL, locked_error

                holder, now = busy.record, self.clock.now()
                if not holder.get("id"):
                    raise
                if deadline is None:
                    wait = max(self.lock_timeout, FOLLOWER_LOCK_WAIT)
                    deadline = now + wait
                    self.on_lock_wait(holder)
                if now >= deadline:
                    raise locked_error(f"rollout {self.rollout.id}", holder, wait) from None
                self.clock.sleep(min(POLL_INTERVAL, deadline - now))

    def _call(self, call: Call, state: RolloutState) -> RolloutState:
        prepared = self.executor.prepare(call, state)
        self.record(Intent(call_id=call.call_id, kind=call.kind, stage=call.stage,
                           step=call.step, line=prepared.line, idempotent=prepared.idempotent))
        return self.record(self.executor.perform(call, prepared))

    def run(self, follow: bool, stop_when_paused: bool = False,
            deadline: float | None = None) -> Decision:
        """Tick until the rollout ends or (without follow) must wait.

        Following, it waits at gates and pauses for a person acting from another terminal,
        except with ``stop_when_paused`` (a CI run has nobody to wait for). A driver
        (``driving``) drives only while it holds the lease, and gives it up on return.
        """
        try:
            return self._run(follow, stop_when_paused, deadline)
        finally:
            if self.driving is not None and follow:
                self.driving.release()

    def _run(self, follow: bool, stop_when_paused: bool, deadline: float | None) -> Decision:
        while True:
            if self.should_stop():
                return Wait(None, "stopped")
            if self.driving is not None and follow and not self._may_drive():
                assert self.state is not None
                if self.state.phase in TERMINAL:
                    return Finished(self.state.phase, self.state.reason)
                watching = Wait(None, "another driver drives this rollout")
                if (stop_when_paused and self.state.phase == "paused") or (
                        deadline is not None and self.clock.now() >= deadline):
                    return watching
                self._nap(watching)
                continue
            decision = self.tick(patient=follow)
            if self.driving is not None and self.driving.lost.is_set():
                continue   # taken over mid-tick: watch the new driver
            if isinstance(decision, Finished) or not follow:
                return decision
            assert isinstance(decision, Wait)
            if stop_when_paused and decision.on_person and self.state is not None and (
                    self.state.phase == "paused"):
                return decision
            if deadline is not None and self.clock.now() >= deadline:
                return decision
            self._nap(decision)

    def _may_drive(self) -> bool:
        """Whether this driver holds the lease, taking it if nobody's is live; when another
        drives, catch up with its events (``on_news``) and name it once (``on_watch``)."""
        assert self.driving is not None
        if self.driving.check() or self.driving.take() is not None:
            self._watching = None
            return True
        holder = self.driving.holder()
        if holder is not None and holder.driver.id != self._watching:
            self._watching = holder.driver.id
            self.on_watch(holder)
        self.load()
        return False

    def _nap(self, wait: Wait) -> None:
        # Short naps, cut short by news: another process may journal an advance, a pause
        # or a rollback meanwhile.
        remaining = self.max_nap if wait.until is None else wait.until - self.clock.now()
        seq = 0 if self.state is None else self.state.seq
        self.rollout.wait_for_news(seq, max(0.0, min(self.max_nap, remaining)),
                                   self.clock.sleep)

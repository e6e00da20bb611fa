"""What each command does, as a library: the CLI parses flags, calls one of these, renders.

Every operation that changes a rollout takes its lock; every change is a journaled event.

The engine (and through it the plan's models) is imported where a rollout's state
is folded, and the reconciler (httpx, jmespath, the notifier) where a rollout runs: `rollout
status` and `rollout list` never import httpx, and a state directory with nothing to show
costs neither.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollout_cli.errors import LockedError, NotAtStage, StateError, UsageError
from rollout_cli.store.identity import who
from rollout_cli.store.protocol import START_LOCK_WAIT, PlanClaimed, RolloutMeta, plan_digest

if TYPE_CHECKING:
    from rollout_cli.engine import Decision, Finished, Policy, RolloutState, Wait
    from rollout_cli.engine.events import Event, Intent
    from rollout_cli.notify import Notifier
    from rollout_cli.store.lease import Driver, Lease
    from rollout_cli.store.protocol import Lock, Repair, Rollout, Store

    EventSink = Callable[[Event, RolloutState], None]


@dataclass
class Context:
    """Where state lives and how to reach the target; tests swap transport and clock."""

    store: Store
    lock_timeout: float = 0.0
    transport: Any = None
    on_event: EventSink = lambda event, state: None
    # Told (subject, lock record) when a command starts waiting for another one's lock.
    on_lock_wait: Callable[[str, dict[str, Any]], None] = lambda subject, holder: None
    now: Callable[[], float] | None = None          # the wall clock
    monotonic: Callable[[], float] | None = None    # default: ``now`` if given, else real
    sleep: Callable[[float], None] | None = None
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    # What the operator must hear that has no other way out (the journal was busy).
    warn: Callable[[str], None] = lambda text: print(text, file=sys.stderr)
    # A driver that finds another one driving watches: told that one's lease, once.
    on_watch: Callable[[Lease], None] = lambda lease: None
    # Asked between ticks: an agent's drivers stop when the agent does.
    should_stop: Callable[[], bool] = lambda: False

    @classmethod
    def at(cls, location: str | os.PathLike[str], **options: Any) -> Context:
        """A context on the store at ``location`` (a state directory)."""
        from rollout_cli.store.location import open_store

        return cls(open_store(location), **options)


@dataclass(frozen=True)
class Result:
    rollout_id: str
    state: RolloutState
    decision: Decision | None = None
    message: str | None = None
    plan: Any = None                 # the rollout's plan, for its stages' names
    interrupted: str | None = None   # the signal that stopped the command: SIGINT, SIGTERM

    @property
    def stage_name(self) -> str | None:
        stages = self.plan.stages if self.plan is not None else ()
        return stages[self.state.stage].name if self.state.stage < len(stages) else None

    @property
    def exit_code(self) -> int:
        from rollout_cli.engine import Wait
        from rollout_cli.engine.decide import exit_code
        from rollout_cli.engine.phases import PAUSED, WAITING_GATE

        if self.interrupted:   # as a shell reports it: 130 for Ctrl-C, 143 for SIGTERM
            return 128 + signal.Signals[self.interrupted].value
        if self.state.uncertain is not None or self.state.phase in (PAUSED, WAITING_GATE):
            return 3
        if isinstance(self.decision, Wait):
            return 3
        return exit_code(self.state.phase)


def _load(path: str | Path, ctx: Context):  # type: ignore[no-untyped-def]
    from rollout_cli.plan import load_plan

    return load_plan(path, ctx.env)


def _reconciler(ctx: Context, rollout: Rollout, loaded: Any, operation: str,
                policy: Policy | None = None,
                driver: Driver | None = None):  # type: ignore[no-untyped-def]
    """The loop for ``rollout``; with ``driver``, it drives only while it holds the lease."""
    import time

    from rollout_cli.clock import ProcessClock
    from rollout_cli.drivers.http import HttpDriver
    from rollout_cli.engine import Policy
    from rollout_cli.notify import Notifier
    from rollout_cli.reconcile.executor import Executor
    from rollout_cli.reconcile.loop import Reconciler

    http = HttpDriver(redactor=loaded.redactor, transport=ctx.transport,
                      verify=loaded.plan.target.verify)
    clock = ProcessClock(ctx.now or time.time, ctx.monotonic, ctx.sleep or time.sleep)
    notifier = Notifier(loaded.plan.notify, loaded.redactor, rollout.id, loaded.plan.name,
                        stages=[stage.name for stage in loaded.plan.stages])

    def on_event(event: Event, state: RolloutState) -> None:
        ctx.on_event(event, state)
        notifier(event, state)

    reconciler = Reconciler(
        ctx.store, rollout, Executor(loaded, http), Policy() if policy is None else policy,
        clock, on_event=on_event, lock_timeout=ctx.lock_timeout, operation=operation,
        # What another process journaled is shown (an operator's advance), not notified:
        # that process notified it.
        on_news=ctx.on_event,
        on_lock_wait=lambda holder: ctx.on_lock_wait(f"rollout {rollout.id}", holder),
        on_watch=ctx.on_watch, should_stop=ctx.should_stop)
    if driver is not None:
        from rollout_cli.reconcile.driving import Driving, lease_ttl

        reconciler.driving = Driving(rollout, driver, lease_ttl(ctx.env), _clock(ctx))
    return reconciler, _Outbound(http, notifier, reconciler, ctx.warn)


class _Outbound:
    """The target's HTTP driver and the plan's notifier under one `with`: however an
    operation ends, its notifications are flushed and their failures journaled."""

    def __init__(self, http: Any, notifier: Notifier, reconciler: Any,
                 warn: Callable[[str], None]) -> None:
        self.http = http
        self.notifier = notifier
        self.reconciler = reconciler
        self.warn = warn

    def __enter__(self) -> _Outbound:
        self.http.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self.http.__exit__(*exc_info)
        finally:
            self._flush()

    def _flush(self) -> None:
        self.notifier.close()
        failures = self.notifier.drain_failures()
        if not failures:
            return
        try:
            # The operation's own lock is released by now; a note is legal in any phase.
            with self.reconciler.rollout.lock("notify", timeout=5.0):
                from rollout_cli.engine.events import Note

                self.reconciler.load()
                for failure in failures:
                    self.reconciler.record(Note(text=f"notification failed: {failure}"))
        except Exception:
            # Journaling is a nicety here: the operator still learns of it.
            for failure in failures:
                self.warn(f"notification failed: {failure}")


def start(ctx: Context, plan_path: Path, follow: bool, auto_approve: bool = False) -> Result:
    from rollout_cli.engine import Policy
    from rollout_cli.engine.phases import TERMINAL

    loaded = _load(plan_path, ctx)
    meta = RolloutMeta.for_plan(loaded.plan.name, Path(plan_path), datetime.now(UTC))
    # The rollout is published with its `created` event: a crash never leaves one without.
    try:
        rollout = ctx.store.start(meta, time=_clock(ctx)(), details=_created(plan_path, loaded),
                                  finished=lambda known: _state(ctx, known).phase in TERMINAL,
                                  timeout=max(ctx.lock_timeout, START_LOCK_WAIT))
    except PlanClaimed as refused:
        raise (_claim_refusal(ctx, loaded.plan.name) or refused) from refused
    reconciler, http = _reconciler(ctx, rollout, loaded, "start", Policy(auto_approve),
                                   _driver("start --follow") if follow else None)
    if reconciler.driving is not None:
        # At once: an agent polling the store must find the new rollout driven already.
        reconciler.driving.take()
    with http:
        _announce(reconciler)
        decision = reconciler.run(follow, stop_when_paused=auto_approve)
    assert reconciler.state is not None
    return Result(rollout.id, reconciler.state, decision, plan=loaded.plan)


def _driver(name: str) -> Driver:
    from rollout_cli.store.lease import Driver

    return Driver.here(name)


def _claim_refusal(ctx: Context, plan_name: str) -> LockedError | None:
    """Why a start of the plan was refused, if it has an active rollout: its claim (which
    rollout, who started it, since when) and who holds its lock now (exit 4)."""
    from rollout_cli.store.locks import lock_info

    meta = _active_of(ctx, plan_name)
    if meta is None:
        return None
    lock = ctx.store.open(meta.id).lock_holder()
    since = meta.created.isoformat().replace("+00:00", "Z")
    rows = [("Rollout", meta.id), ("Who", f"{meta.created_by} (started it)"),
            ("Since", since),
            ("Lock", f"held by {lock.get('operation')} (pid {lock.get('pid')}, "
                     f"{lock.get('who')}) since {lock.get('created')}" if lock else
                     "not held (no command is acting on it at this moment)")]
    info = "Claim Info:\n" + "\n".join(f"  {name + ':':<11}{value}" for name, value in rows)
    message = (f"plan {plan_name} already has an active rollout, {meta.id}.\n\n{info}\n\n"
               f"Only one rollout of a plan may be active: see it with `rollout status "
               f"{meta.id}`, advance it, or roll it back with `rollout rollback {meta.id}`.")
    if lock:
        message += "\n\n" + lock_info(lock)
    return LockedError(message, {"rollout": meta.id, "plan": plan_name,
                                 "who": meta.created_by, "created": since, "lock": lock})


def _clock(ctx: Context) -> Callable[[], float]:
    import time

    return ctx.now or time.time


def _created(plan_path: Path, loaded: Any) -> dict[str, Any]:
    """What a rollout's `created` event records beyond its metadata."""
    return {"plan_file": str(plan_path), "plan_digest": loaded.digest}


def _announce(reconciler: Any) -> None:
    """Hand the events the store journaled at creation to the printer and the notifier."""
    from rollout_cli.store.loading import events_of

    state = reconciler.load()
    for event in events_of(reconciler.rollout.journal.events()):
        reconciler.on_event(event, state)


def find(ctx: Context, rollout_id: str | None, latest: bool = False) -> Rollout:
    """The named rollout, or the only active one; with ``latest``, else the newest one."""
    store = ctx.store
    if rollout_id:
        return store.open(rollout_id)
    active = store.find_active()
    if len(active) == 1:
        return store.open(active[0].id)
    known = [m.id for m in store.list()]
    if not active and latest and known:
        return store.open(known[-1])
    if not active:
        hint = f"; rollouts: {', '.join(known[-5:])}" if known else ""
        raise UsageError(f"no active rollout{_newest_ended(ctx, known)}; name one{hint}")
    raise UsageError("several rollouts are active; name one: "
                     + ", ".join(m.id for m in active))


def _newest_ended(ctx: Context, known: list[str]) -> str:
    """How the newest rollout ended, for a refusal that found none active."""
    if not known:
        return ""
    try:
        state = _state(ctx, ctx.store.open(known[-1]))
    except StateError:
        return ""
    return f": the newest, {known[-1]}, has ended {state.phase} ({state.reason})"


def _plan_for(ctx: Context, rollout: Rollout, state: RolloutState, plan_file: Path | None,
              accept_change: bool) -> tuple[Any, Event | None]:
    """Load the rollout's plan; refuse a changed plan unless accepted (then say so)."""
    from rollout_cli.engine import events as ev

    path = plan_file or _plan_here(rollout)
    if not path.exists():
        given = _given_plan_path(rollout)
        also = f" nor {given} from here" if given and given != path else ""
        raise UsageError(
            f"the plan of rollout {rollout.id} is not on this machine: not {path}{also}; run "
            "from a checkout where it is at the path it was started with"
            f"{f' ({given})' if given else ''}, or `rollout resume {rollout.id} --plan PATH`")
    digest = plan_digest(path)
    recorded = state.plan_digest or rollout.meta.plan_digest
    if digest != recorded:
        if not accept_change:
            raise StateError(f"plan {path} changed since rollout {rollout.id} started "
                             f"(digest {recorded[:12]} -> {digest[:12]}); run again with "
                             "--accept-plan-change to continue with the new plan")
        from rollout_cli.engine.plan_change import refusal

        loaded = _load(path, ctx)
        refused = refusal(loaded.plan, state)
        if refused is not None:
            raise StateError(f"plan {path} changed since rollout {rollout.id} started, and "
                             f"cannot be accepted: {refused}")
        return loaded, ev.PlanChanged(plan_digest=digest, who=who())
    return _load(path, ctx), None


def _plan_here(rollout: Rollout) -> Path:
    """Where this machine finds the rollout's plan: the absolute path it was started from;
    else, when that is not here (another machine, a CI workspace that is gone), the path
    as it was given at the start, from the current directory (an operator's checkout of
    the same repository, an agent's mounted plans). Its digest is checked as for any plan."""
    recorded = Path(rollout.meta.plan_path)
    if recorded.exists():
        return recorded
    given = _given_plan_path(rollout)
    return given if given is not None and given.exists() else recorded


def _given_plan_path(rollout: Rollout) -> Path | None:
    """The plan's path as `start` was given it, if relative (its `created` event says)."""
    try:
        given = next(rollout.journal.events(), {}).get("plan_file")
    except StateError:
        return None
    return Path(given) if isinstance(given, str) and not Path(given).is_absolute() else None


def _state(ctx: Context, rollout: Rollout) -> RolloutState:
    from rollout_cli.store.loading import load_state

    return load_state(rollout)


@contextmanager
def _holding(ctx: Context, lock: Lock, subject: str) -> Iterator[dict[str, Any] | None]:
    """Hold ``lock`` for the block, waiting up to its timeout for a live holder (and saying
    so through ``ctx.on_lock_wait``); yields the record of the holder waited for, if any."""
    wait, lock.timeout = lock.timeout, 0.0
    waited = None
    try:
        lock.acquire()
    except LockedError as busy:
        if wait <= 0 or busy.record.get("stale") or not busy.record.get("id"):
            raise
        waited, lock.timeout = busy.record, wait
        ctx.on_lock_wait(subject, waited)
        lock.acquire()
    try:
        yield waited
    finally:
        lock.release()


def _act(ctx: Context, rollout_id: str | None, operation: str,
         events: Callable[[RolloutState, Any], Iterable[Event]], follow: bool,
         plan_file: Path | None = None, accept_change: bool = False,
         policy: Policy | None = None, run: bool = True, latest: bool = False,
         driver: Driver | None = None) -> Result:
    """Journal an operator's events under the lock, then continue the rollout.

    A ``driver`` (a follower, an agent) continues it only while it holds its lease: the
    events are journaled, and the rollout's driver, this one or another, acts on them.

    A rollback that waited for the lock while another command rolled the rollout back
    journals nothing and reports that rollback instead (see `_rolled_back_meanwhile`).
    """
    from rollout_cli.engine import Finished, Policy
    from rollout_cli.engine.phases import TERMINAL

    policy = Policy() if policy is None else policy
    rollout = find(ctx, rollout_id, latest)
    since = _now(ctx)
    with ExitStack() as client:
        # The lock first: a rollout another command holds is refused before any work.
        with _holding(ctx, rollout.lock(operation, timeout=_lock_wait(ctx, driver)),
                      f"rollout {rollout.id}") as waited:
            state = _state(ctx, rollout)
            if rollout_id is None and not latest and state.phase in TERMINAL:
                # Claimed still, by a process killed after the rollout ended: not active.
                ctx.store.release_active(rollout.meta.plan_name, rollout.id)
                raise UsageError(f"no active rollout: {rollout.id}, the last one active, has "
                                 f"ended {state.phase} ({state.reason}); name it to act on "
                                 "it anyway")
            loaded, change = _plan_for(ctx, rollout, state, plan_file, accept_change)
            if waited and operation == "rollback" and _rolled_back_meanwhile(state, since):
                return Result(rollout.id, state, None, MEANWHILE, loaded.plan)
            reconciler, http = _reconciler(ctx, rollout, loaded, operation, policy, driver)
            client.enter_context(http)
            state = reconciler.load()
            if change:
                state = reconciler.record(change)
            for event in events(state, loaded):
                state = reconciler.record(event)
            decision = None
            if run and driver is None and state.phase not in TERMINAL:
                # Under the same hold: no other command sees the events without their work.
                decision = reconciler.tick(locked=True)
            elif state.phase in TERMINAL:  # ended by a process killed before letting go
                ctx.store.release_active(rollout.meta.plan_name, rollout.id)
        if follow and (driver is not None or (
                decision is not None and not isinstance(decision, Finished))):
            # With --auto-approve nobody is watching: a pause ends the command (exit 3).
            decision = reconciler.run(follow, stop_when_paused=policy.auto_approve)
    assert reconciler.state is not None
    return Result(rollout.id, reconciler.state, decision, plan=reconciler.executor.plan)


def _lock_wait(ctx: Context, driver: Driver | None) -> float:
    """How long a command waits for the rollout's lock: a driver (a follower, an agent)
    waits as a follower does for whoever holds it (another driver's tick, an operator's
    rollback); a one-shot command only ``ctx.lock_timeout``."""
    if driver is None:
        return ctx.lock_timeout
    from rollout_cli.reconcile.loop import FOLLOWER_LOCK_WAIT

    return max(ctx.lock_timeout, FOLLOWER_LOCK_WAIT)


def advance(ctx: Context, rollout_id: str | None, force: bool, reason: str | None, full: bool,
            follow: bool = False, accept_change: bool = False,
            stage: str | None = None) -> Result:
    """Open the gate; with ``stage`` (a name or index) only if the rollout is at that stage."""
    from rollout_cli.engine import events as ev
    from rollout_cli.engine.phases import PAUSED, TERMINAL, WAITING_GATE

    if force and not reason:
        raise UsageError("--force needs --reason TEXT: it is recorded with who forced it")

    def events(state: RolloutState, loaded: Any) -> list[Event]:
        if stage is not None:
            _at_stage(state, loaded.plan, stage)
        if state.phase in TERMINAL:
            raise UsageError(f"rollout {state.id} has ended ({state.phase}); nothing to advance")
        if state.uncertain is not None:
            raise UsageError("a call's outcome is uncertain; resolve it first with "
                             "`rollout resume --assume-applied` or `--resend`")
        opened = ev.GateApproved(stage=state.stage, who=who(), reason=reason)
        if full:
            # At a gate or paused, the promotion has to open it too: it skips what follows.
            return [*([opened] if state.phase in (WAITING_GATE, PAUSED) else []),
                    ev.PromotedFull(who=who(), reason=reason)]
        if state.phase in (WAITING_GATE, PAUSED):
            return [opened]
        if not force:
            raise UsageError(f"rollout {state.id} is not waiting at a gate (phase "
                             f"{state.phase}); its bake or analysis is not done. Use --force "
                             "--reason TEXT to skip it")
        return [replace(opened, forced=True)]

    return _act(ctx, rollout_id, "advance", events, follow, accept_change=accept_change,
                driver=_driver("advance --follow") if follow else None)


def _at_stage(state: RolloutState, plan: Any, wanted: str) -> None:
    """Refuse (exit 3, saying where the rollout is) unless it is live at stage ``wanted``."""
    from rollout_cli.engine.phases import TERMINAL

    names = [stage.name for stage in plan.stages]
    index = int(wanted) if wanted.isdigit() else names.index(wanted) if wanted in names else -1
    if not 0 <= index < len(names):
        raise UsageError(f"--stage: no stage {wanted} in plan {plan.name}; its stages are "
                         f"{', '.join(names)} (or their index, 0 to {len(names) - 1})")
    here = f"stage {names[min(state.stage, len(names) - 1)]} ({state.phase})"
    if state.phase in TERMINAL:
        raise NotAtStage(f"rollout {state.id} is at {here}: it has ended; nothing was done")
    if state.stage != index:
        raise NotAtStage(f"rollout {state.id} is at {here}, not at stage {names[index]}; "
                         f"nothing was done (`rollout status {state.id}` shows where it is)")


def pause(ctx: Context, rollout_id: str | None, reason: str | None,
          alert: dict[str, Any] | None = None) -> Result:
    """Hold the rollout; ``alert``: the pushed alert that asked (its fingerprint, labels)."""
    from rollout_cli.engine import events as ev
    from rollout_cli.engine.phases import PAUSED, TERMINAL

    def events(state: RolloutState, loaded: Any) -> list[Event]:
        if state.phase == PAUSED:
            return []
        if state.phase in TERMINAL or state.phase == "rolling-back":
            raise UsageError(f"rollout {state.id} is {state.phase}; it cannot be paused")
        return [ev.Paused(reason=reason or f"paused by {who()}", who=who(), alert=alert)]

    return _act(ctx, rollout_id, "pause", events, follow=False, run=False)


def resume(ctx: Context, rollout_id: str | None, follow: bool, assume_applied: bool = False,
           resend: bool = False, accept_change: bool = False, plan_file: Path | None = None,
           auto_approve: bool = False, captures: dict[str, str] | None = None) -> Result:
    """Continue; ``captures`` stand in for what an uncertain call's lost answer captured."""
    from rollout_cli.engine import Policy
    from rollout_cli.engine import events as ev
    from rollout_cli.engine.phases import PAUSED

    if assume_applied and resend:
        raise UsageError("choose one of --assume-applied and --resend")
    if captures and not assume_applied:
        raise UsageError("--capture goes with --assume-applied")

    def events(state: RolloutState, loaded: Any) -> list[Event]:
        found: list[Event] = []
        call = state.uncertain
        if call is not None:
            if not (assume_applied or resend):
                raise UsageError(f"uncertain call: {call.line}; check the target, "
                                 "then resume with --assume-applied or --resend")
            resolved = ev.CallResolved(call_id=call.call_id, who=who(),
                                       how="assume-applied" if assume_applied else "resend")
            if assume_applied:
                moved = (loaded.plan.stages[call.stage].percentage  # traffic moved
                         if call.kind == "traffic" and call.stage is not None else None)
                resolved = replace(resolved, percentage=moved,
                                   captures=_stand_ins(loaded, call, captures or {}))
            found.append(resolved)
        if state.phase == PAUSED:
            found.append(ev.Resumed(who=who()))
        return found

    return _act(ctx, rollout_id, "resume", events, follow, plan_file, accept_change,
                Policy(auto_approve), driver=_driver("resume --follow") if follow else None)


def drive(ctx: Context, rollout_id: str, driver: Driver) -> Result:
    """Drive a rollout as ``driver`` (an agent's thread) until it ends or ``ctx.should_stop``:
    measure, judge, roll back, open auto gates, wait at manual gates and pauses; while
    another driver holds its lease, only watch. Nothing is journaled to start with."""
    return _act(ctx, rollout_id, "drive", lambda state, loaded: [], follow=True,
                driver=driver)


def _stand_ins(loaded: Any, call: Intent, given: dict[str, str]) -> dict[str, Any]:
    """The captures of an uncertain call assumed applied: later steps need them, and only
    the operator, looking at the target, knows them now that its answer is lost."""
    plan = loaded.plan
    step = (plan.traffic if call.kind == "traffic" else
            plan.stages[call.stage].steps[call.step] if call.stage is not None else None)
    needed = sorted(getattr(step, "capture", None) or {})
    unknown = sorted(set(given) - set(needed))
    if unknown:
        raise UsageError(f"{call.line} captures nothing named {', '.join(unknown)}"
                         + (f" (it captures {', '.join(needed)})" if needed else ""))
    missing = [name for name in needed if name not in given]
    if missing:
        raise UsageError(
            f"{call.line} captures {', '.join(missing)} from its answer, which was lost; "
            "look the value up on the target and add --capture NAME=VALUE for each, or "
            "use --resend if the target accepts the call twice")
    return dict(loaded.redactor.data(given))


def rollback(ctx: Context, rollout_id: str | None, plan_path: Path | None,
             reason: str | None, resend: bool = False, assume_applied: bool = False,
             alert: dict[str, Any] | None = None) -> Result:
    """Run the plan's rollback steps, from a rollout's state or from the plan file alone.

    Without an id or a plan, only the one active rollout: a finished one is rolled back
    again only when it is named. A rollback that was interrupted is continued, not started
    again: its cause stays the reason, and a non-idempotent call it had in flight is not
    re-sent unless ``resend`` (``assume_applied`` counts it as arrived; without either it
    is named as uncertain). ``alert``: the pushed alert that asked (fingerprint, labels)."""
    from rollout_cli.engine import events as ev
    if resend and assume_applied:
        raise UsageError("choose one of --assume-applied and --resend")
    reason = reason or f"rollback requested by {who()}"
    started = ev.RollbackStarted(reason=reason, who=who(), alert=alert)

    def events(state: RolloutState, loaded: Any) -> list[Event]:
        from rollout_cli.engine.phases import ROLLBACK_FAILED, ROLLED_BACK, ROLLING_BACK

        in_flight = state.pending if state.phase == ROLLING_BACK else None
        if (resend or assume_applied) and (in_flight is None or in_flight.idempotent):
            raise UsageError(f"rollout {state.id} has no rollback call in flight whose "
                             "outcome is uncertain; --resend and --assume-applied are for one")
        if state.phase == ROLLING_BACK:
            found: list[Event] = [ev.RollbackRequested(reason=reason, who=who(), alert=alert)]
            if in_flight is not None and (resend or assume_applied):
                found.append(ev.CallResolved(call_id=in_flight.call_id, who=who(),
                                             how="resend" if resend else "assume-applied"))
            return found
        if state.phase in (ROLLED_BACK, ROLLBACK_FAILED) and state.reason:
            # Again, after a rollback that ended: its cause stays, the request is added.
            return [replace(started, reason=f"{state.reason}; then {reason}")]
        return [started]

    if rollout_id or plan_path is None:
        return _act(ctx, rollout_id, "rollback", events, follow=True, accept_change=True)
    loaded = _load(plan_path, ctx)
    name, since = loaded.plan.name, _now(ctx)
    # The plan's lock, whichever way it goes: two of these at once run one after the other.
    with _holding(ctx, ctx.store.lock_plan(name, "rollback", timeout=ctx.lock_timeout),
                  f"plan {name}") as waited:
        newest = _newest_of(ctx, name) if waited else None
        if newest is not None and _rolled_back_meanwhile(newest.state, since):
            return replace(newest, message=MEANWHILE)
        active = _active_of(ctx, name)
        if active is not None:
            try:
                return _act(ctx, active.id, "rollback", events,
                            follow=True, plan_file=plan_path, accept_change=True)
            except (StateError, LockedError) as problem:
                if isinstance(problem, LockedError) and not problem.record.get("stale"):
                    raise
                reason += (f" (state of {active.id} unusable: {problem}; rolling back from "
                           "the plan)")
        return _stateless_rollback(ctx, plan_path, loaded, reason)


MEANWHILE = "rolled back while this command waited for the lock; nothing was sent again"


def _rolled_back_meanwhile(state: RolloutState, since: float) -> bool:
    """Whether another command rolled this back after ``since`` (while we waited for it).

    Two people pressing the button for one incident: the second one's rollback would send
    the plan's steps again, and with them its one non-idempotent call, the alert. A rollback
    that ended `rollback-failed` is not done: the next one runs it again to complete it.
    """
    from rollout_cli.engine.phases import ROLLED_BACK

    return state.phase == ROLLED_BACK and state.updated >= since


def _newest_of(ctx: Context, plan_name: str) -> Result | None:
    """The plan's newest rollout, as a result, whether or not its state is usable."""
    metas = [meta for meta in ctx.store.list() if meta.plan_name == plan_name]
    if not metas:
        return None
    try:
        return Result(metas[-1].id, _state(ctx, ctx.store.open(metas[-1].id)))
    except StateError:
        return None


def _now(ctx: Context) -> float:
    import time

    return (ctx.now or time.time)()


def _active_of(ctx: Context, plan_name: str) -> RolloutMeta | None:
    return next((meta for meta in ctx.store.find_active() if meta.plan_name == plan_name), None)


@dataclass(frozen=True)
class RollbackPreview:
    """What `rollout rollback` will act on and send, for its confirmation prompt."""

    subject: str
    steps: list[tuple[str, str]]     # (redacted request line or command, step label)


def rollback_preview(ctx: Context, rollout_id: str | None,
                     plan_path: Path | None) -> RollbackPreview:
    """The rollout (or plan) that ``rollback`` with these arguments acts on, and its steps."""
    from rollout_cli.engine import RolloutState

    if rollout_id or plan_path is None:
        rollout: Rollout | None = find(ctx, rollout_id)
        plan_file = None
    else:
        active = _active_of(ctx, _load(plan_path, ctx).plan.name)
        rollout = ctx.store.open(active.id) if active else None
        plan_file = plan_path
    if rollout is None:
        loaded = _load(plan_path, ctx)
        state = RolloutState(id="<new rollout>", plan=loaded.plan.name)
        subject = (f"plan {loaded.plan.name} from the plan file alone (none of its rollouts is "
                   "active; a new rollout records this rollback)")
    else:
        state = _state(ctx, rollout)
        loaded = _plan_for(ctx, rollout, state, plan_file, accept_change=True)[0]
        names = [stage.name for stage in loaded.plan.stages]
        where = f"{state.phase} at {names[min(state.stage, len(names) - 1)]}"
        subject = f"rollout {rollout.id} (plan {loaded.plan.name}, {where})"
    return RollbackPreview(subject, _rollback_lines(ctx, loaded, state))


def _rollback_lines(ctx: Context, loaded: Any, state: RolloutState) -> list[tuple[str, str]]:
    """Each rollback step as the executor will send it: templates filled, redacted."""
    from rollout_cli.drivers.http import HttpDriver
    from rollout_cli.engine import Call
    from rollout_cli.reconcile.executor import Executor

    executor = Executor(loaded, HttpDriver(redactor=loaded.redactor, transport=ctx.transport))
    lines = []
    for index, step in enumerate(loaded.plan.rollback):
        prepared = executor.prepare(Call("preview", "rollback", None, index), state)
        problem = f"; cannot be sent: {prepared.error}" if prepared.error else ""
        lines.append((prepared.line, (step.name or "") + problem))
    return lines


def _stateless_rollback(ctx: Context, plan_path: Path, loaded: Any, reason: str) -> Result:
    from rollout_cli.engine import events as ev
    rollout = ctx.store.create(RolloutMeta.for_plan(loaded.plan.name, plan_path,
                                                    datetime.now(UTC)),
                               time=_clock(ctx)(),
                               details={**_created(plan_path, loaded), "stateless": True})
    reconciler, http = _reconciler(ctx, rollout, loaded, "rollback")
    with http:
        with rollout.lock("rollback", timeout=ctx.lock_timeout):
            _announce(reconciler)
            reconciler.record(ev.RollbackStarted(reason=reason, who=who()))
        decision = reconciler.run(follow=True)
    assert reconciler.state is not None
    return Result(rollout.id, reconciler.state, decision, plan=loaded.plan)


@dataclass(frozen=True)
class Status:
    meta: RolloutMeta
    state: RolloutState
    recent: list[Event]
    plan: Any | None
    lease: Lease | None = None      # who drives it (or drove it last)

    @property
    def exit_code(self) -> int:
        return Result(self.meta.id, self.state).exit_code


def status(ctx: Context, rollout_id: str | None, recent: int = 8) -> Status:
    rollout = find(ctx, rollout_id, latest=True)
    # Here, once there is a rollout: with nothing to show, status loads no engine.
    from rollout_cli.engine import events as ev
    from rollout_cli.store.loading import events_of

    state = _state(ctx, rollout)
    shown = (ev.Outcome, ev.Paused, ev.GateApproved, ev.RollbackStarted, ev.StageStarted,
             ev.Note)
    tail: deque[Event] = deque(maxlen=recent)
    for event in events_of(rollout.journal.events()):
        if isinstance(event, shown):
            tail.append(event)
    return Status(rollout.meta, state, list(tail), _plan_if_loads(ctx, rollout),
                  rollout.lease())


def watch(ctx: Context, rollout_id: str | None, every: float = 1.0) -> Iterator[Status]:
    """The rollout's ``status``, again every ``every`` seconds, until it has ended (that
    last status included)."""
    import time

    sleep = ctx.sleep or time.sleep
    while True:
        found = status(ctx, rollout_id)
        yield found
        # Here, not above: with no rollout to show, status ends without the engine.
        from rollout_cli.engine.phases import TERMINAL

        if found.state.phase in TERMINAL:
            return
        sleep(every)


def _plan_if_loads(ctx: Context, rollout: Rollout) -> Any | None:
    """The rollout's plan, if its file is here (``_plan_here``) and loads: it only adds
    what the journal lacks (stage names, check thresholds), so a moved or broken plan must
    not stop a look at what already happened."""
    path = _plan_here(rollout)
    if not path.exists():
        return None
    try:
        return _load(path, ctx).plan
    except Exception:
        return None


def active_plans(ctx: Context) -> list[tuple[RolloutMeta, Any]]:
    """Every active rollout whose plan file loads, with its plan (the agent's alerts)."""
    found = []
    for meta in ctx.store.find_active():
        plan = _plan_if_loads(ctx, ctx.store.open(meta.id))
        if plan is not None:
            found.append((meta, plan))
    return found


def alert_fingerprints(ctx: Context, rollout_id: str) -> set[str]:
    """The fingerprints of the pushed alerts a rollout's journal records acting on."""
    from rollout_cli.store.loading import events_of

    rollout = ctx.store.open(rollout_id)
    return {str(event.alert.get("fingerprint")) for event in
            events_of(rollout.journal.events()) if getattr(event, "alert", None)}


def history(ctx: Context, rollout_id: str | None) -> tuple[RolloutMeta, Iterable[Event]]:
    from rollout_cli.store.loading import events_of

    rollout = find(ctx, rollout_id, latest=True)
    return rollout.meta, events_of(rollout.journal.events())


def report(ctx: Context, rollout_id: str | None) -> Any:
    """A rollout's report (rollout_cli.report.Report), from its journal alone: nothing is
    sent to the target. Without an id, the active or else the newest rollout."""
    from rollout_cli.report import build_report
    from rollout_cli.store.loading import events_of

    rollout = find(ctx, rollout_id, latest=True)
    return build_report(rollout.meta, events_of(rollout.journal.events()),
                        _plan_if_loads(ctx, rollout))


def list_rollouts(ctx: Context) -> list[tuple[RolloutMeta, RolloutState | None]]:
    store = ctx.store
    found = []
    for meta in store.list():
        try:
            found.append((meta, _state(ctx, store.open(meta.id))))
        except StateError:
            found.append((meta, None))
    return found


def unlock(ctx: Context, lock_id: str) -> Any:
    """Release the lock with this id, or the one whose id starts with it (as a rollout is
    named by a unique prefix); a prefix of several is a UsageError naming them."""
    held = [str(record.get("id")) for record in ctx.store.held_locks()]
    if lock_id not in held:
        matching = sorted(found for found in held if lock_id and found.startswith(lock_id))
        if len(matching) > 1:
            raise UsageError(f"{lock_id!r} begins {len(matching)} lock ids: "
                             f"{', '.join(matching)}; give more of it")
        lock_id = matching[0] if matching else lock_id
    return ctx.store.unlock(lock_id)


def repair(ctx: Context, rollout_id: str | None) -> tuple[Rollout, Repair | None]:
    """Move a rollout journal's cut-short last line to a side file, holding its lock; the
    repair is journaled. None when there was nothing to repair."""
    from rollout_cli.engine import events as ev
    rollout = find(ctx, rollout_id, latest=True)
    # A stale lock's takeover is journaled after the repair: the journal takes no line now.
    with rollout.lock("repair", timeout=ctx.lock_timeout, journal_takeover=False) as lock:
        done = rollout.journal.repair()
        if lock.took_over is not None:
            rollout.note_takeover(lock.took_over)
        if done is not None:
            rollout.journal.append(ev.Note(
                text=f"repaired the journal: its cut-short line {done.line} ({done.size} "
                     f"bytes) moved to {done.side_file.name}", who=who()).to_json(),
                time=_clock(ctx)())
    return rollout, done


def note_interrupted(ctx: Context, rollout_id: str | None,
                     signal_name: str) -> tuple[Result, Event | None]:
    """Journal that a command was stopped by ``signal_name`` (SIGINT, SIGTERM): the rollout
    stays resumable as it is. The result, and the note (None when nothing had started)."""
    from rollout_cli.engine import RolloutState
    from rollout_cli.engine import events as ev

    try:
        rollout = find(ctx, rollout_id)
    except (UsageError, StateError):      # stopped before its rollout existed
        return Result("", RolloutState(id="", plan=""), interrupted=signal_name), None
    note = None
    try:
        with rollout.lock("interrupt", timeout=5.0):
            note = ev.from_json(rollout.journal.append(ev.Note(
                text=f"interrupted by {signal_name}; `rollout resume` continues").to_json(),
                time=_now(ctx)))
    except LockedError:     # the note is a courtesy; the result must still be printed
        pass
    return Result(rollout.id, _state(ctx, rollout), interrupted=signal_name), note


__all__ = ["Context", "Finished", "Result", "RollbackPreview", "Status", "Wait"]


def __getattr__(name: str) -> Any:
    if name in ("Finished", "Wait"):  # the engine's decisions, re-exported on first use
        from rollout_cli import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

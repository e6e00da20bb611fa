"""What each command does, as a library: the CLI parses flags, calls one of these, renders.

Every operation that changes a rollout takes its lock; every change is a journaled event.

The engine (and through it the plan's models) is imported where a rollout's state
is folded, and the reconciler (httpx, jmespath, the notifier) where a rollout runs: `rollout
status` and `rollout list` never import httpx, and a state directory with nothing to show
costs neither.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollout_cli.errors import LockedError, StateError, UsageError
from rollout_cli.store import RolloutDir, RolloutMeta, StateStore, plan_digest
from rollout_cli.store.identity import who
from rollout_cli.store.rollouts import START_LOCK_WAIT

if TYPE_CHECKING:
    from rollout_cli.engine import Decision, Finished, PendingCall, Policy, RolloutState, Wait
    from rollout_cli.notify import Notifier
    from rollout_cli.store import Repair

    EventSink = Callable[[dict[str, Any], RolloutState], None]


@dataclass
class Context:
    """Where state lives and how to reach the target; tests swap transport and clock."""

    state_dir: Path
    lock_timeout: float = 0.0
    transport: Any = None
    on_event: EventSink = lambda event, state: None
    now: Callable[[], float] | None = None
    sleep: Callable[[float], None] | None = None
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def store(self) -> StateStore:
        return StateStore(self.state_dir)


@dataclass(frozen=True)
class Result:
    rollout_id: str
    state: RolloutState
    decision: Decision | None = None
    message: str | None = None

    @property
    def exit_code(self) -> int:
        from rollout_cli.engine import Wait
        from rollout_cli.engine.decide import exit_code
        from rollout_cli.engine.phases import PAUSED, WAITING_GATE

        if self.state.uncertain is not None or self.state.phase in (PAUSED, WAITING_GATE):
            return 3
        if isinstance(self.decision, Wait):
            return 3
        return exit_code(self.state.phase)


def _load(path: str | Path, ctx: Context):  # type: ignore[no-untyped-def]
    from rollout_cli.plan import load_plan

    return load_plan(path, ctx.env)


def _reconciler(ctx: Context, rollout: RolloutDir, loaded: Any, operation: str,
                policy: Policy | None = None):  # type: ignore[no-untyped-def]
    import time

    from rollout_cli.drivers.http import HttpDriver
    from rollout_cli.engine import Policy
    from rollout_cli.notify import Notifier
    from rollout_cli.reconcile.executor import Executor
    from rollout_cli.reconcile.loop import Clock, Reconciler

    http = HttpDriver(redactor=loaded.redactor, transport=ctx.transport,
                      verify=loaded.plan.target.verify)
    clock = Clock(ctx.now or time.time, ctx.sleep or time.sleep)
    notifier = Notifier(loaded.plan.notify, loaded.redactor, rollout.id, loaded.plan.name,
                        stages=[stage.name for stage in loaded.plan.stages])

    def on_event(event: dict[str, Any], state: RolloutState) -> None:
        ctx.on_event(event, state)
        notifier(event, state)

    reconciler = Reconciler(ctx.store, rollout, Executor(loaded, http),
                            Policy() if policy is None else policy, clock, on_event,
                            ctx.lock_timeout, operation)
    return reconciler, _Outbound(http, notifier, reconciler)


class _Outbound:
    """The target's HTTP driver and the plan's notifier under one `with`: however an
    operation ends, its notifications are flushed and their failures journaled."""

    def __init__(self, http: Any, notifier: Notifier, reconciler: Any) -> None:
        self.http = http
        self.notifier = notifier
        self.reconciler = reconciler

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
                self.reconciler.load()
                for failure in failures:
                    self.reconciler.record({"type": "note",
                                            "text": f"notification failed: {failure}"})
        except Exception:
            # Journaling is a nicety here: the operator still learns of it.
            from rollout_cli.render.console import stderr

            for failure in failures:
                stderr().print(f"notification failed: {failure}", markup=False,
                               highlight=False)


def start(ctx: Context, plan_path: Path, follow: bool, auto_approve: bool = False) -> Result:
    from rollout_cli.engine import Policy
    from rollout_cli.engine.phases import TERMINAL

    loaded = _load(plan_path, ctx)
    meta = RolloutMeta.for_plan(loaded.plan.name, Path(plan_path), datetime.now(UTC))
    # The rollout is published with its `created` event: a crash never leaves one without.
    rollout = ctx.store.start(meta, time=_clock(ctx)(), details=_created(plan_path, loaded),
                              finished=lambda known: _state(ctx, known).phase in TERMINAL,
                              timeout=max(ctx.lock_timeout, START_LOCK_WAIT))
    reconciler, http = _reconciler(ctx, rollout, loaded, "start", Policy(auto_approve))
    with http:
        _announce(reconciler)
        decision = reconciler.run(follow, stop_when_paused=auto_approve)
    assert reconciler.state is not None
    return Result(rollout.id, reconciler.state, decision)


def _clock(ctx: Context) -> Callable[[], float]:
    import time

    return ctx.now or time.time


def _created(plan_path: Path, loaded: Any) -> dict[str, Any]:
    """What a rollout's `created` event records beyond its metadata."""
    return {"plan_file": str(plan_path), "plan_digest": loaded.digest}


def _announce(reconciler: Any) -> None:
    """Hand the events the store journaled at creation to the printer and the notifier."""
    state = reconciler.load()
    for event in reconciler.rollout.journal.events():
        reconciler.on_event(event, state)


def find(ctx: Context, rollout_id: str | None, latest: bool = False) -> RolloutDir:
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
        raise UsageError(f"no active rollout; name one{hint}")
    raise UsageError("several rollouts are active; name one: "
                     + ", ".join(m.id for m in active))


def _plan_for(ctx: Context, rollout: RolloutDir, state: RolloutState, plan_file: Path | None,
              accept_change: bool) -> tuple[Any, dict[str, Any] | None]:
    """Load the rollout's plan; refuse a changed plan unless accepted (then say so)."""
    path = plan_file or Path(rollout.meta.plan_path)
    if not path.exists():
        raise UsageError(f"the plan {path} of rollout {rollout.id} is gone; pass --plan PATH")
    digest = plan_digest(path)
    recorded = state.plan_digest or rollout.meta.plan_digest
    if digest != recorded:
        if not accept_change:
            raise StateError(f"plan {path} changed since rollout {rollout.id} started "
                             f"(digest {recorded[:12]} -> {digest[:12]}); run again with "
                             "--accept-plan-change to continue with the new plan")
        return _load(path, ctx), {"type": "plan-changed", "plan_digest": digest, "who": who()}
    return _load(path, ctx), None


def _state(ctx: Context, rollout: RolloutDir) -> RolloutState:
    from rollout_cli.store.loading import load_state

    return load_state(rollout)


def _act(ctx: Context, rollout_id: str | None, operation: str,
         events: Callable[[RolloutState, Any], Iterable[dict[str, Any]]], follow: bool,
         plan_file: Path | None = None, accept_change: bool = False,
         policy: Policy | None = None, run: bool = True, latest: bool = False) -> Result:
    """Journal an operator's events under the lock, then continue the rollout."""
    from rollout_cli.engine import Finished, Policy
    from rollout_cli.engine.phases import TERMINAL

    policy = Policy() if policy is None else policy
    rollout = find(ctx, rollout_id, latest)
    with ExitStack() as client:
        # The lock first: a rollout another command holds is refused before any work.
        with rollout.lock(operation, timeout=ctx.lock_timeout):
            state = _state(ctx, rollout)
            loaded, change = _plan_for(ctx, rollout, state, plan_file, accept_change)
            reconciler, http = _reconciler(ctx, rollout, loaded, operation, policy)
            client.enter_context(http)
            state = reconciler.load()
            if change:
                state = reconciler.record(change)
            for event in events(state, loaded):
                state = reconciler.record(event)
            decision = None
            if run and state.phase not in TERMINAL:
                # Under the same hold: no other command sees the events without their work.
                decision = reconciler.tick(locked=True)
            elif state.phase in TERMINAL:  # ended by a process killed before letting go
                ctx.store.release_active(rollout.meta.plan_name, rollout.id)
        if follow and decision is not None and not isinstance(decision, Finished):
            # With --auto-approve nobody is watching: a pause ends the command (exit 3).
            decision = reconciler.run(follow, stop_when_paused=policy.auto_approve)
    assert reconciler.state is not None
    return Result(rollout.id, reconciler.state, decision)


def advance(ctx: Context, rollout_id: str | None, force: bool, reason: str | None, full: bool,
            follow: bool = False, accept_change: bool = False) -> Result:
    from rollout_cli.engine.phases import PAUSED, TERMINAL, WAITING_GATE

    def events(state: RolloutState, loaded: Any) -> list[dict[str, Any]]:
        if state.phase in TERMINAL:
            raise UsageError(f"rollout {state.id} has ended ({state.phase}); nothing to advance")
        if state.uncertain is not None:
            raise UsageError("a call's outcome is uncertain; resolve it first with "
                             "`rollout resume --assume-applied` or `--resend`")
        base = {"who": who(), "reason": reason}
        if full:
            # At a gate or paused, the promotion has to open it too: it skips what follows.
            opened = ([{"type": "gate-approved", "stage": state.stage, **base}]
                      if state.phase in (WAITING_GATE, PAUSED) else [])
            return [*opened, {"type": "promoted-full", **base}]
        if state.phase in (WAITING_GATE, PAUSED):
            return [{"type": "gate-approved", "stage": state.stage, **base}]
        if not force:
            raise UsageError(f"rollout {state.id} is not waiting at a gate (phase "
                             f"{state.phase}); its bake or analysis is not done. Use --force "
                             "--reason TEXT to skip it")
        return [{"type": "gate-approved", "stage": state.stage, "forced": True, **base}]

    return _act(ctx, rollout_id, "advance", events, follow, accept_change=accept_change)


def pause(ctx: Context, rollout_id: str | None, reason: str | None) -> Result:
    from rollout_cli.engine.phases import PAUSED, TERMINAL

    def events(state: RolloutState, loaded: Any) -> list[dict[str, Any]]:
        if state.phase == PAUSED:
            return []
        if state.phase in TERMINAL or state.phase == "rolling-back":
            raise UsageError(f"rollout {state.id} is {state.phase}; it cannot be paused")
        return [{"type": "paused", "reason": reason or f"paused by {who()}", "who": who()}]

    return _act(ctx, rollout_id, "pause", events, follow=False, run=False)


def resume(ctx: Context, rollout_id: str | None, follow: bool, assume_applied: bool = False,
           resend: bool = False, accept_change: bool = False, plan_file: Path | None = None,
           auto_approve: bool = False, captures: dict[str, str] | None = None) -> Result:
    """Continue; ``captures`` stand in for what an uncertain call's lost answer captured."""
    from rollout_cli.engine import Policy
    from rollout_cli.engine.phases import PAUSED

    if assume_applied and resend:
        raise UsageError("choose one of --assume-applied and --resend")
    if captures and not assume_applied:
        raise UsageError("--capture goes with --assume-applied")

    def events(state: RolloutState, loaded: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        if state.uncertain is not None:
            if not (assume_applied or resend):
                raise UsageError(f"uncertain call: {state.uncertain.line}; check the target, "
                                 "then resume with --assume-applied or --resend")
            resolved = {"type": "call-resolved", "call_id": state.uncertain.call_id,
                        "how": "assume-applied" if assume_applied else "resend", "who": who()}
            if assume_applied:
                resolved["captures"] = _stand_ins(loaded, state.uncertain, captures or {})
                call = state.uncertain
                if call.kind == "traffic" and call.stage is not None:  # traffic moved
                    resolved["percentage"] = loaded.plan.stages[call.stage].percentage
            found.append(resolved)
        if state.phase == PAUSED:
            found.append({"type": "resumed", "who": who()})
        return found

    return _act(ctx, rollout_id, "resume", events, follow, plan_file, accept_change,
                Policy(auto_approve))


def _stand_ins(loaded: Any, call: PendingCall, given: dict[str, str]) -> dict[str, Any]:
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
             reason: str | None) -> Result:
    """Run the plan's rollback steps, from a rollout's state or from the plan file alone."""
    reason = reason or f"rollback requested by {who()}"
    started = {"type": "rollback-started", "reason": reason, "who": who()}
    if rollout_id or plan_path is None:
        # Without an active rollout, the newest one: running a rollback again is safe.
        return _act(ctx, rollout_id, "rollback", lambda state, loaded: [started],
                    follow=True, accept_change=True, latest=True)
    loaded = _load(plan_path, ctx)
    store = ctx.store
    for meta in store.find_active():
        if meta.plan_name == loaded.plan.name:
            try:
                return _act(ctx, meta.id, "rollback", lambda state, loaded: [started],
                            follow=True, plan_file=plan_path, accept_change=True)
            except (StateError, LockedError) as problem:
                if isinstance(problem, LockedError) and not problem.record.get("stale"):
                    raise
                reason += f" (state of {meta.id} unusable: {problem}; rolling back from the plan)"
    return _stateless_rollback(ctx, plan_path, loaded, reason)


def _stateless_rollback(ctx: Context, plan_path: Path, loaded: Any, reason: str) -> Result:
    rollout = ctx.store.create(RolloutMeta.for_plan(loaded.plan.name, plan_path,
                                                    datetime.now(UTC)),
                               time=_clock(ctx)(),
                               details={**_created(plan_path, loaded), "stateless": True})
    reconciler, http = _reconciler(ctx, rollout, loaded, "rollback")
    with http:
        with rollout.lock("rollback", timeout=ctx.lock_timeout):
            _announce(reconciler)
            reconciler.record({"type": "rollback-started", "reason": reason, "who": who()})
        decision = reconciler.run(follow=True)
    assert reconciler.state is not None
    return Result(rollout.id, reconciler.state, decision)


@dataclass(frozen=True)
class Status:
    meta: RolloutMeta
    state: RolloutState
    recent: list[dict[str, Any]]
    plan: Any | None

    @property
    def exit_code(self) -> int:
        return Result(self.meta.id, self.state).exit_code


def status(ctx: Context, rollout_id: str | None, recent: int = 8) -> Status:
    rollout = find(ctx, rollout_id, latest=True)
    state = _state(ctx, rollout)
    tail: deque[dict[str, Any]] = deque(maxlen=recent)
    for event in rollout.journal.events():
        if event["type"] in ("outcome", "paused", "gate-approved", "rollback-started",
                             "stage-started", "note"):
            tail.append(event)
    plan = None
    path = Path(rollout.meta.plan_path)
    if path.exists():
        try:
            plan = _load(path, ctx).plan
        except Exception:
            plan = None
    return Status(rollout.meta, state, list(tail), plan)


def history(ctx: Context, rollout_id: str | None) -> tuple[RolloutMeta, Iterable[dict[str, Any]]]:
    rollout = find(ctx, rollout_id, latest=True)
    return rollout.meta, rollout.journal.events()


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
    return ctx.store.unlock(lock_id)


def repair(ctx: Context, rollout_id: str | None) -> tuple[RolloutDir, Repair | None]:
    """Move a rollout journal's cut-short last line to a side file, holding its lock; the
    repair is journaled. None when there was nothing to repair."""
    rollout = find(ctx, rollout_id, latest=True)
    # A stale lock's takeover is journaled after the repair: the journal takes no line now.
    with rollout.lock("repair", timeout=ctx.lock_timeout, journal_takeover=False) as lock:
        done = rollout.journal.repair()
        if lock.took_over is not None:
            rollout.note_takeover(lock.took_over)
        if done is not None:
            rollout.journal.append(
                {"type": "note", "text": f"repaired the journal: its cut-short line {done.line}"
                                         f" ({done.size} bytes) moved to {done.side_file.name}",
                 "who": who()}, time=_clock(ctx)())
    return rollout, done


def note_interrupted(ctx: Context, rollout_id: str, signal_name: str) -> None:
    """Journal that a run was interrupted; the rollout stays resumable as it is."""
    rollout = ctx.store.open(rollout_id)
    with rollout.lock("interrupt", timeout=5.0):
        rollout.journal.append({"type": "note", "text": f"interrupted by {signal_name}; "
                                "`rollout resume` continues"},
                               time=(ctx.now or __import__("time").time)())


__all__ = ["Context", "Finished", "Result", "Status", "Wait"]


def __getattr__(name: str) -> Any:
    if name in ("Finished", "Wait"):  # the engine's decisions, re-exported on first use
        from rollout_cli import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

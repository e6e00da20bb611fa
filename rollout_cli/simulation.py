"""`rollout simulate`: the whole plan against the sandbox's model, in process, on a
virtual clock. Same engine, same executor and drivers as a real run; only the clock,
the transport and the journal differ. Local `run:` steps are not executed."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollout_cli.engine import Event, Finished, Policy, RolloutState
from rollout_cli.engine import events as ev
from rollout_cli.plan.durations import format_duration

if TYPE_CHECKING:
    from rollout_cli.plan import LoadedPlan

START = 1_800_000_000.0   # a fixed epoch second, so traces are reproducible


@dataclass
class Trace:
    """The decisions of a simulated rollout, at their simulated times."""

    start: float
    stages: list[str] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    evaluations: int = 0
    rounds: int = 0

    def __call__(self, event: Event, state: RolloutState) -> None:
        if isinstance(event, ev.AnalysisRound):
            run = event.run
            self.rounds += 1
            self.evaluations += len(run.verdicts)
            if run.phase == "pass" and run.action not in ("pause", "rollback"):
                return
            verdicts = {v["check"]: v["phase"] for v in run.verdicts}
            self._add(event, state, f"{event.scope} analysis: {run.phase}",
                      verdicts=verdicts, reasons=[v["reason"] for v in run.verdicts
                                                  if v["phase"] != "pass"])
        elif isinstance(event, _DECISIONS):
            self._add(event, state, event.TYPE, reason=getattr(event, "reason", None))
        elif isinstance(event, ev.Outcome) and not event.ok:
            self._add(event, state, "call failed", reason=event.error)

    def _add(self, event: Event, state: RolloutState, action: str, **extra: Any) -> None:
        stage = getattr(event, "name", None)
        if stage is None and state.stage < len(self.stages):
            stage = self.stages[state.stage]
        self.entries.append({"at": event.time - self.start,
                             "at_text": format_duration(event.time - self.start),
                             "stage": stage, "percentage": state.percentage, "action": action,
                             **{k: v for k, v in extra.items() if v is not None}})


_DECISIONS = (ev.StageStarted, ev.StageCompleted, ev.GateApproved, ev.Paused,
              ev.RollbackStarted, ev.Ended)


@dataclass(frozen=True)
class Simulation:
    plan: str
    scenario: str
    seed: int
    phase: str
    reason: str | None
    simulated: float
    trace: list[dict[str, Any]]
    evaluations: int
    rounds: int
    max_percentage: float | None
    calls: int   # requests sent to the target: steps, traffic, metric queries, retries

    @property
    def exit_code(self) -> int:
        from rollout_cli.engine.decide import exit_code

        return exit_code(self.phase)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "exit_code": self.exit_code}


def simulate(plan_path: Path | str, scenario: str = "healthy", seed: int = 0,
             env: dict[str, str] | None = None, max_time: float = 30 * 86400,
             on_event: Any = None, sandbox: Any = None) -> Simulation:
    """Run ``plan_path`` against a fresh sandbox of ``scenario`` (or against ``sandbox``, a
    ``SandboxApp`` on a ``VirtualClock`` whose call log the caller wants to read after)."""
    from rollout_cli.clock import VirtualClock
    from rollout_cli.drivers.http import HttpDriver
    from rollout_cli.plan import load_plan
    from rollout_cli.reconcile.executor import Executor
    from rollout_cli.reconcile.loop import Reconciler
    from rollout_cli.reconcile.memory import MemoryMeta, MemoryRollout, MemoryStore
    from rollout_cli.sandbox import SandboxTransport, create_sandbox

    loaded = load_plan(plan_path, os.environ if env is None else env)
    refuse_unsimulated(loaded)
    if sandbox is None:
        app = create_sandbox(scenario, seed=seed, clock=VirtualClock(START))
    else:
        app = sandbox
        scenario = app.model.scenario.name
    clock = app.clock
    if not isinstance(clock, VirtualClock):
        raise ValueError("a simulation needs a sandbox on a VirtualClock")
    start = clock.now()
    trace = Trace(start, [stage.name for stage in loaded.plan.stages])
    top = {"percentage": 0.0}

    def sink(event: dict[str, Any], state: RolloutState) -> None:
        trace(event, state)
        if state.percentage is not None:
            top["percentage"] = max(top["percentage"], state.percentage)
        if on_event:
            on_event(event, state)

    # Calls take simulated time, so what a call causes comes after the instant before it.
    transport = _Counted(SandboxTransport(app, elapse=clock.advance))
    # Retry jitter drawn from the seed too: the same seed gives the same trace.
    jitter = random.Random(f"retry-jitter:{seed}")
    http = HttpDriver(redactor=loaded.redactor, transport=transport,  # type: ignore[arg-type]
                      sleep=clock.advance,
                      clock=clock.now, random=jitter.random)
    rollout = MemoryRollout(MemoryMeta(f"simulation-{seed}", loaded.plan.name))
    executor = Executor(loaded, http, simulate_commands=True)
    executor.metrics.concurrency = 1
    reconciler = Reconciler(MemoryStore(), rollout, executor,  # type: ignore[arg-type]
                            Policy(auto_approve=True), clock, sink,
                            max_nap=float("inf"))
    with http:
        reconciler.record(ev.Created(plan=loaded.plan.name, simulated=True))
        decision = reconciler.run(follow=True, stop_when_paused=True,
                                  deadline=start + max_time)
    state = reconciler.state
    assert state is not None
    reason = decision.reason if isinstance(decision, Finished) else getattr(
        decision, "reason", None)
    return Simulation(loaded.plan.name, str(scenario), seed, state.phase, reason,
                      clock.now() - start, trace.entries, trace.evaluations, trace.rounds,
                      top["percentage"], transport.sent)


def refuse_unsimulated(loaded: LoadedPlan) -> None:
    """Raise PlanError naming each metric the rollout would query that the in-process
    sandbox cannot answer (its provider says so): a simulation would only pause on its
    errors. Metrics that no analysis checks are never queried, so they do not count."""
    from rollout_cli.errors import PlanError
    from rollout_cli.providers import registered

    plan = loaded.plan
    analyses = [*(plan.analysis_for(stage) for stage in plan.stages), plan.background_analysis]
    queried = {plan.measured_names[name][0] for analysis in analyses if analysis
               for name in plan.metrics_of(analysis)}
    answered = " and ".join(key for key, provider in registered().items() if provider.simulated)
    problems = []
    for name, metric in plan.metrics.items():
        key = metric.provider.key
        if name in queried and not metric.provider.simulated:
            problems.append(loaded.positions.problem(
                ("metrics", name, key),
                f"metrics.{name}: a {key} metric cannot be simulated; the in-process "
                f"sandbox answers {answered} metrics only",
                f"rehearse this plan against `rollout sandbox` over HTTP with a real {key} "
                "source; see the README's Simulation section", key=True))
    if problems:
        raise PlanError(problems)


class _Counted:
    """A transport that counts the requests it passes on."""

    def __init__(self, inner: Any):
        self._inner = inner
        self.sent = 0

    def handle_request(self, request: Any) -> Any:
        self.sent += 1
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()

"""`rollout demo`: the sandbox on a free loopback port, the demo plan run against it over
real HTTP, and a summary of what happened and why."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollout_cli.engine import Event, RolloutState

if TYPE_CHECKING:
    from rollout_cli.store.protocol import Store

DEMO_PLAN = Path(__file__).resolve().parent / "plans" / "brain-api-demo.yaml"
TIME_SCALE = 600.0


@dataclass
class DemoLog:
    """What the summary needs, collected from the events as they happen."""

    stages: list[tuple[str, float | None, float]] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def __call__(self, event: Event, state: RolloutState) -> None:
        from rollout_cli.engine import events as ev

        if isinstance(event, ev.StageCompleted):
            self.stages.append((event.name, state.percentage, event.time - self.started))
        elif isinstance(event, ev.Paused | ev.RollbackStarted | ev.Ended):
            self.decisions.append(f"{event.TYPE}: {event.reason}")
        elif isinstance(event, ev.GateApproved):
            self.decisions.append(f"gate of {event.name or event.stage} approved "
                                  f"({'automatically' if event.auto else event.who})")


@dataclass(frozen=True)
class DemoResult:
    rollout_id: str
    scenario: str
    phase: str
    reason: str | None
    url: str
    seconds: float
    log: DemoLog
    exit_code: int
    state: RolloutState | None = None


def run_demo(store: Store, scenario: str = "healthy", seed: int = 0, plan: Path = DEMO_PLAN,
             on_event: Any = None,
             speed: float = 1.0) -> DemoResult:
    """``speed`` runs the tool's clock and the sandbox's that much faster together, so the
    plan's seconds-long bakes pass in less real time and see the same simulated traffic.
    The rollout is kept in ``store``, where `rollout report` and `history` find it."""
    from rollout_cli import operations
    from rollout_cli.sandbox import create_sandbox, running_sandbox

    log = DemoLog()

    def sink(event: dict[str, Any], state: RolloutState) -> None:
        log(event, state)
        if on_event is not None:
            on_event(event, state)

    if speed <= 0:
        from rollout_cli.errors import UsageError

        raise UsageError(f"--speed must be positive, got {speed:g}")
    app = create_sandbox(scenario, seed=seed, time_scale=TIME_SCALE * speed, max_real_delay=0.5)
    origin = time.time()
    with running_sandbox(app) as sandbox:
        ctx = operations.Context(store, on_event=sink,
                                 env={"BRAIN_API_URL": sandbox.url},
                                 now=lambda: origin + (time.time() - origin) * speed,
                                 sleep=lambda seconds: time.sleep(seconds / speed))
        started = time.perf_counter()
        result = operations.start(ctx, plan, follow=True, auto_approve=True)
        seconds = time.perf_counter() - started
    state = result.state
    return DemoResult(result.rollout_id, scenario, state.phase,
                      state.reason or state.pause_reason, sandbox.url, seconds, log,
                      result.exit_code, state)

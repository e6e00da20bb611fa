"""When a stage is measured, what it is judged on, and how long its bake really watched.

Each test replays a rollout the way the reconcile loop would, without I/O: a scripted
target answers measurements (taking as long as a test says), time moves only when the
engine waits or a measurement takes time, and every journaled event is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rollout_cli.engine import (
    Call,
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
from rollout_cli.plan import load_text

BASE = """\
version: 1
name: timed
target: {{base_url: "http://127.0.0.1:9"}}
traffic: {{request: POST /w, json: {{p: "{{{{ percentage }}}}"}}, idempotent: true}}
metrics:
  rate: {{http: {{get: /r}}, select: ok}}
  up: {{http: {{get: /r}}, select: up}}
checks:
  ok: {{metric: rate, pass: ">= 0.95", fail: "< 0.90"}}
  ok3: {{metric: rate, window: 30m, min_samples: 3, pass: ">= 0.95", fail: "< 0.90"}}
  live: {{metric: up, pass: "== 1"}}
  quiet: {{metric: up, pass: ">= 0", no_data: ignore}}
analysis: {analysis}
{background}
stages:
  - {{name: canary, percentage: 10, bake: {bake}}}
  - {{name: full, percentage: 100, bake: {bake}}}
rollback:
  - {{request: POST /off, idempotent: true}}
"""


def plan_of(analysis: str = "{interval: 20s, initial_delay: 10s, checks: [ok]}",
            background: str = "", bake: str = "1h") -> Any:
    text = BASE.format(analysis=analysis, background=background, bake=bake)
    return load_text(text, "timed.yaml", {}).plan


HEALTHY = {"rate": 0.99, "up": 1.0}


@dataclass
class World:
    """A reconcile loop without I/O around ``decide``."""

    plan: Any
    answers: Callable[[float], dict[str, Any]] = lambda now: HEALTHY
    measure_takes: float = 0.0
    policy: Policy = field(default_factory=lambda: Policy(auto_approve=True))
    now: float = 1000.0
    state: RolloutState = field(default_factory=lambda: RolloutState(id="r", plan="timed"))
    events: list[dict[str, Any]] = field(default_factory=list)
    measures: list[float] = field(default_factory=list)   # when each measurement began

    def __post_init__(self) -> None:
        self.record({"type": "created"})

    def record(self, event: Event | dict[str, Any]) -> None:
        """Journal ``event`` (typed, or as the journal spells it) at ``now``."""
        typed = from_json(event) if isinstance(event, dict) else event
        stored = typed.stamped(self.state.seq + 1, self.now)
        self.state = apply(self.state, stored)
        self.events.append(stored.to_record())

    def step(self) -> Any:
        decision = decide(self.plan, self.state, self.now, self.policy)
        if isinstance(decision, Record):
            self.record(decision.event)
        elif isinstance(decision, Call):
            self.record({"type": "intent", "call_id": decision.call_id, "kind": decision.kind,
                         "stage": decision.stage, "step": decision.step,
                         "line": decision.call_id, "idempotent": True})
            percentage = (self.plan.stages[decision.stage].percentage
                          if decision.stage is not None else None)
            self.record({"type": "outcome", "call_id": decision.call_id, "ok": True,
                         "percentage": percentage})
        elif isinstance(decision, Measure):
            self.measures.append(self.now)
            answers = self.answers(self.now)
            self.now += self.measure_takes
            errors = {m: answers["error"] for m in decision.metrics if "error" in answers}
            self.record({"type": "measured", "keep": decision.keep, "errors": errors,
                         "values": {m: answers.get(m) for m in decision.metrics}})
        return decision

    def run(self, until: float, stop_on_person: bool = True) -> Any:
        """Step until ``until`` (simulated seconds from now), a person's wait or the end."""
        end = self.now + until
        while True:
            decision = self.step()
            if isinstance(decision, Finished):
                return decision
            if isinstance(decision, Wait):
                if decision.until is None and stop_on_person:
                    return decision
                if self.now >= end:
                    return decision
                self.now = min(end, decision.until if decision.until is not None else end)

    def of(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind
                and all(e.get(k) == v for k, v in match.items())]

    def traffic_answered(self, stage: int) -> float:
        return next(e["time"] for e in self.events if e["type"] == "outcome"
                    and e["call_id"] == f"traffic:{stage}")


# --- measured at the right moment -------------------------------------------------------


def test_the_first_measurement_waits_for_initial_delay_exactly():
    world = World(plan_of("{interval: 20s, initial_delay: 10s, checks: [ok]}"))

    world.run(until=25)

    answered = world.traffic_answered(0)
    assert world.measures, "nothing was measured"
    assert world.measures[0] >= answered + 10, (world.measures[0] - answered)


def test_sharing_a_measurement_never_pulls_a_stage_round_before_its_delay():
    # The background analysis measures every 20 s from the first stage on; at the second
    # stage its round falls 4 s after the traffic change, inside the stage's 10 s delay.
    world = World(plan_of("{interval: 20s, initial_delay: 10s, checks: [ok]}",
                          "background: {interval: 20s, checks: [live]}", bake="36s"))

    world.run(until=200)

    answered = world.traffic_answered(1)
    stage_rounds = [e for e in world.of("analysis", scope="stage")
                    if e["stage"] == 1]
    assert stage_rounds
    first_judged = min(world.events[i - 1]["time"] for i, e in enumerate(world.events)
                       if e in stage_rounds)
    measured_for_it = [t for t in world.measures if t <= first_judged][-1]
    assert measured_for_it >= answered + 10, measured_for_it - answered


def test_a_stage_is_judged_only_on_samples_after_its_change_and_delay():
    # Background samples every 20 s keep arriving while the second stage waits out its
    # 2-minute delay; the stage's windowed check must not count them.
    world = World(plan_of("{interval: 1m, initial_delay: 2m, checks: [ok3]}",
                          "background: {interval: 20s, initial_delay: 0s, checks: [ok]}",
                          bake="30m"))

    world.run(until=3600 * 3)

    answered = world.traffic_answered(1)
    first = next(e for e in world.of("analysis", scope="stage") if e["stage"] == 1)
    verdict = first["run"]["verdicts"][0]
    # Only the stage's own first measurement, at answered + 2m, is in its window.
    assert "1 samples in 30m, needs 3" in verdict["reason"], verdict["reason"]
    assert first["time"] >= answered + 120


def test_one_measurement_is_judged_once_however_long_it_took():
    # Each measurement takes 15 s (retries against a failing source) at a 20 s interval.
    world = World(plan_of("{interval: 20s, initial_delay: 0s, checks: [ok], "
                          "consecutive_error_limit: 3}"),
                  answers=lambda now: {"error": "HTTP 503"}, measure_takes=15.0)

    world.run(until=400, stop_on_person=True)

    rounds = world.of("analysis", scope="stage")
    measured = world.of("measured")
    assert len(rounds) == len(measured) == 4
    # Errors counted one per measurement: the pause comes on the 4th, not the 2nd.
    assert world.state.phase == "paused"
    assert "consecutive errors (4) > consecutive_error_limit (3)" in world.state.pause_reason


def test_a_resumed_rollout_measures_before_it_judges():
    world = World(plan_of("{interval: 20s, initial_delay: 0s, checks: [ok]}"))
    while not isinstance(decision := world.step(), Measure):   # measured ...
        assert isinstance(decision, Record | Call), decision
    # ... and the process dies before judging it. Ten minutes later it resumes.
    world.now += 600

    decision = decide(world.plan, world.state, world.now, world.policy)

    assert isinstance(decision, Measure), decision


# --- time that counts ---------------------------------------------------------------------


def _bake_done(world: World, stage: int) -> float:
    baking = world.of("stage-baking", stage=stage)[0]["time"]
    completed = world.of("stage-completed", stage=stage)[0]["time"]
    return completed - baking


def test_paused_time_does_not_count_toward_the_bake():
    world = World(plan_of("{interval: 5m, initial_delay: 0s, checks: [ok]}", bake="1h"))
    world.run(until=20 * 60)
    world.record({"type": "paused", "reason": "lunch", "who": "ana@host"})
    world.now += 3600                      # paused for an hour
    world.record({"type": "resumed", "who": "ana@host"})

    world.run(until=3 * 3600)

    assert _bake_done(world, 0) >= 2 * 3600   # 1 h of bake plus the hour paused


def test_an_outage_does_not_count_toward_the_bake():
    down = (1000 + 15 * 60, 1000 + 45 * 60)   # the metric source fails for 30 minutes

    def answers(now: float) -> dict[str, Any]:
        return {"error": "connect error"} if down[0] <= now < down[1] else HEALTHY

    world = World(plan_of("{interval: 5m, initial_delay: 0s, checks: [ok], "
                          "consecutive_error_limit: 20}", bake="1h"), answers=answers)

    world.run(until=4 * 3600)

    assert world.state.stage == 2
    assert _bake_done(world, 0) >= 3600 + 30 * 60


def test_after_an_outage_pause_the_stage_needs_fresh_passing_samples():
    down = [1000 + 50 * 60, 1000 + 58 * 60]

    def answers(now: float) -> dict[str, Any]:
        return {"error": "connect error"} if down[0] <= now < down[1] else HEALTHY

    world = World(plan_of("{interval: 5m, initial_delay: 0s, checks: [ok3], "
                          "consecutive_error_limit: 1}", bake="1h"), answers=answers)
    wait = world.run(until=3 * 3600)
    assert wait.on_person and "consecutive errors" in world.state.pause_reason
    world.now = down[1] + 3 * 60            # the source is back; an operator resumes
    world.record({"type": "resumed", "who": "ana@host"})

    world.run(until=4 * 3600)

    resumed = world.of("resumed")[0]["time"]
    completed = world.of("stage-completed", stage=0)[0]
    fresh = [t for t in world.measures if resumed <= t <= completed["time"]]
    assert len(fresh) >= 3, fresh


def test_no_data_ignore_never_passes_by_itself():
    world = World(plan_of("{interval: 5m, initial_delay: 0s, checks: [quiet]}", bake="10m"),
                  answers=lambda now: {"rate": 0.99, "up": None})

    end = world.run(until=6 * 3600)

    assert world.state.phase == "paused", world.state.phase
    assert not world.of("stage-completed")
    assert "no check had data" in world.state.pause_reason
    assert isinstance(end, Wait)


def test_an_ignored_check_drops_out_and_the_others_decide():
    world = World(plan_of("{interval: 5m, initial_delay: 0s, checks: [ok, quiet]}",
                          bake="10m"),
                  answers=lambda now: {"rate": 0.99, "up": None})

    end = world.run(until=6 * 3600)

    assert end == Finished("succeeded", "every stage completed")
    verdicts = world.of("analysis")[0]["run"]["verdicts"]
    assert [v["phase"] for v in verdicts] == ["pass", "ignored"]

"""When a stage is measured, what it is judged on, and how long its bake really watched.

Each test replays a rollout the way the reconcile loop would, without I/O: a scripted
target answers measurements (taking as long as a test says), time moves only when the
engine waits or a measurement takes time, and every journaled event is kept.
"""

from __future__ import annotations

from typing import Any

from rollout_cli.engine import (
    Call,
    Finished,
    Measure,
    Policy,
    Record,
    Wait,
    decide,
)
from rollout_cli.plan import load_text
from tests.engine.world import World

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


def created(plan: Any, answers: Any = lambda now: HEALTHY, measure_takes: float = 0.0
          ) -> World:
    """A rollout of ``plan`` just created, gates opening by themselves."""
    found = World(plan, answers=answers, measure_takes=measure_takes,
                  policy=Policy(auto_approve=True))
    found.record({"type": "created"})
    return found


def traffic_answered(world: World, stage: int) -> float:
    return next(e["time"] for e in world.events if e["type"] == "outcome"
                and e["call_id"] == f"traffic:{stage}")


# --- measured at the right moment -------------------------------------------------------


def test_the_first_measurement_waits_for_initial_delay_exactly():
    world = created(plan_of("{interval: 20s, initial_delay: 10s, checks: [ok]}"))

    world.run(until=25)

    answered = traffic_answered(world, 0)
    assert world.measures, "nothing was measured"
    assert world.measures[0] >= answered + 10, (world.measures[0] - answered)


def test_sharing_a_measurement_never_pulls_a_stage_round_before_its_delay():
    # The background analysis measures every 20 s from the first stage on; at the second
    # stage its round falls 4 s after the traffic change, inside the stage's 10 s delay.
    world = created(plan_of("{interval: 20s, initial_delay: 10s, checks: [ok]}",
                          "background: {interval: 20s, checks: [live]}", bake="36s"))

    world.run(until=200)

    answered = traffic_answered(world, 1)
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
    world = created(plan_of("{interval: 1m, initial_delay: 2m, checks: [ok3]}",
                          "background: {interval: 20s, initial_delay: 0s, checks: [ok]}",
                          bake="30m"))

    world.run(until=3600 * 3)

    answered = traffic_answered(world, 1)
    first = next(e for e in world.of("analysis", scope="stage") if e["stage"] == 1)
    verdict = first["run"]["verdicts"][0]
    # Only the stage's own first measurement, at answered + 2m, is in its window.
    assert "1 sample in 30m, needs 3" in verdict["reason"], verdict["reason"]
    assert first["time"] >= answered + 120


def test_one_measurement_is_judged_once_however_long_it_took():
    # Each measurement takes 15 s (retries against a failing source) at a 20 s interval.
    world = created(plan_of("{interval: 20s, initial_delay: 0s, checks: [ok], "
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
    world = created(plan_of("{interval: 20s, initial_delay: 0s, checks: [ok]}"))
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
    world = created(plan_of("{interval: 5m, initial_delay: 0s, checks: [ok]}", bake="1h"))
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

    world = created(plan_of("{interval: 5m, initial_delay: 0s, checks: [ok], "
                          "consecutive_error_limit: 20}", bake="1h"), answers=answers)

    world.run(until=4 * 3600)

    assert world.state.stage == 2
    assert _bake_done(world, 0) >= 3600 + 30 * 60


def test_after_an_outage_pause_the_stage_needs_fresh_passing_samples():
    down = [1000 + 50 * 60, 1000 + 58 * 60]

    def answers(now: float) -> dict[str, Any]:
        return {"error": "connect error"} if down[0] <= now < down[1] else HEALTHY

    world = created(plan_of("{interval: 5m, initial_delay: 0s, checks: [ok3], "
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
    world = created(plan_of("{interval: 5m, initial_delay: 0s, checks: [quiet]}", bake="10m"),
                  answers=lambda now: {"rate": 0.99, "up": None})

    end = world.run(until=6 * 3600)

    assert world.state.phase == "paused", world.state.phase
    assert not world.of("stage-completed")
    assert "no check had data" in world.state.pause_reason
    assert isinstance(end, Wait)


def test_an_ignored_check_drops_out_and_the_others_decide():
    world = created(plan_of("{interval: 5m, initial_delay: 0s, checks: [ok, quiet]}",
                          bake="10m"),
                  answers=lambda now: {"rate": 0.99, "up": None})

    end = world.run(until=6 * 3600)

    assert end == Finished("succeeded", "every stage completed")
    verdicts = world.of("analysis")[0]["run"]["verdicts"]
    assert [v["phase"] for v in verdicts] == ["pass", "ignored"]

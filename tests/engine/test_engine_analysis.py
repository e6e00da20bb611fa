"""Analysis runs like Argo's: counters, limits and the messages that carry them; and the
decisions they drive, replayed without I/O."""

from __future__ import annotations

import pytest

from rollout_cli.engine import (
    Policy,
    RolloutState,
)
from rollout_cli.engine.analysis import Run, assess
from rollout_cli.engine.checks import Sample
from rollout_cli.engine.measurements import Measurements
from rollout_cli.plan import load_text
from rollout_cli.plan.models import Analysis
from tests.engine.world import World

PLAN = """\
version: 1
name: judged
target: {base_url: "http://127.0.0.1:9"}
traffic: {request: POST /w, json: {p: "{{ percentage }}"}, idempotent: true}
metrics:
  rate: {http: {get: /r}, select: ok}
  lat: {http: {get: /r}, select: lat}
  base: {http: {get: /r}, select: base}
checks:
  ok: {metric: rate, pass: ">= 0.95", fail: "< 0.90"}
  slow: {metric: lat, baseline: base, fail: "> +20%"}
  shown: {metric: rate, pass: ">= 0.99", dry_run: true}
  warm: {metric: rate, window: 1h, min_samples: 3, pass: ">= 0.95"}
analysis: {interval: 5m, checks: [ok, slow, shown]}
stages:
  - {name: canary, percentage: 10, bake: 20m}
  - {name: full, percentage: 100, bake: 20m}
rollback:
  - {request: POST /off, idempotent: true}
"""

plan = load_text(PLAN, "judged.yaml", {}).plan


def measured(**values: float | None) -> Measurements:
    found = Measurements()
    for metric, value in values.items():
        found = found.add(metric, Sample(100.0, value), 3600)
    return found


def round_of(analysis: Analysis, run: Run, **values: float | None) -> Run:
    return assess(plan, analysis, "stage", run, measured(**values), 100.0)


LIMITS = [
    # id, analysis, rounds of values, action, message
    ("one-failure-over-zero", Analysis(checks=("ok",)), [{"rate": 0.5}], "rollback",
     "stage analysis: failed (1) > failure_limit (0): ok: last = 0.5; pass needs >= 0.95, "
     "fail at < 0.90 -> fail"),
    ("failure-within-limit", Analysis(checks=("ok",), failure_limit=1), [{"rate": 0.5}],
     "continue", ""),
    ("second-failure-over-limit", Analysis(checks=("ok",), failure_limit=1),
     [{"rate": 0.5}, {"rate": 0.97}, {"rate": 0.5}], "rollback",
     "stage analysis: failed (2) > failure_limit (1): ok: last = 0.5; pass needs >= 0.95, "
     "fail at < 0.90 -> fail"),
    ("failure-pauses-when-asked", Analysis(checks=("ok",), on_failure="pause"),
     [{"rate": 0.5}], "pause",
     "stage analysis: failed (1) > failure_limit (0): ok: last = 0.5; pass needs >= 0.95, "
     "fail at < 0.90 -> fail"),
    ("inconclusive-over-limit", Analysis(checks=("ok",), inconclusive_limit=1),
     [{"rate": 0.92}, {"rate": 0.92}], "pause",
     "stage analysis: inconclusive (2) > inconclusive_limit (1): ok: last = 0.92; pass needs "
     ">= 0.95, fail at < 0.90 -> inconclusive"),
    ("inconclusive-may-roll-back", Analysis(checks=("ok",), on_inconclusive="rollback"),
     [{"rate": 0.92}], "rollback",
     "stage analysis: inconclusive (1) > inconclusive_limit (0): ok: last = 0.92; pass needs "
     ">= 0.95, fail at < 0.90 -> inconclusive"),
    ("inconclusive-continue-never-acts", Analysis(checks=("ok",), on_inconclusive="continue"),
     [{"rate": 0.92}] * 5, "continue", ""),
    ("errors-over-limit", Analysis(checks=("ok",), consecutive_error_limit=1),
     [{"rate": None, "!rate": "timeout"}] * 2, "pause",
     "stage analysis: consecutive errors (2) > consecutive_error_limit (1): ok: metric rate "
     "failed: timeout -> error"),
    ("errors-reset-by-a-success", Analysis(checks=("ok",), consecutive_error_limit=1),
     [{"rate": None, "!rate": "timeout"}, {"rate": 0.99}, {"rate": None, "!rate": "x"}],
     "continue", ""),
    ("errors-may-roll-back", Analysis(checks=("ok",), consecutive_error_limit=0,
                                      on_error="rollback"),
     [{"rate": None, "!rate": "HTTP 500"}], "rollback",
     "stage analysis: consecutive errors (1) > consecutive_error_limit (0): ok: metric rate "
     "failed: HTTP 500 -> error"),
    ("dry-run-never-acts", Analysis(checks=("shown",)), [{"rate": 0.5}] * 3, "continue", ""),
    ("warming-up-is-not-counted", Analysis(checks=("warm",)), [{"rate": 0.99}] * 2,
     "continue", ""),
]


def _run_rounds(analysis: Analysis, rounds: list[dict]) -> Run:
    run = Run(started=0.0, next_due=0.0)
    history = Measurements()
    for index, values in enumerate(rounds):
        now = 300.0 * (index + 1)
        errors = {k[1:]: v for k, v in values.items() if k.startswith("!")}
        for metric, value in values.items():
            if not metric.startswith("!"):
                history = history.add(metric, Sample(now, value, errors.get(metric)), 3600)
        run = assess(plan, analysis, "stage", run, history, now)
    return run


@pytest.mark.parametrize(("analysis", "rounds", "action", "message"),
                         [c[1:] for c in LIMITS], ids=[c[0] for c in LIMITS])
def test_limit(analysis, rounds, action, message):
    run = _run_rounds(analysis, rounds)

    assert (run.action, run.message) == (action, message)


def test_dry_run_verdicts_are_shown_but_do_not_block_a_pass():
    run = _run_rounds(Analysis(checks=("ok", "shown")), [{"rate": 0.97}])

    assert run.passed and run.phase == "pass"
    assert {v["check"]: (v["phase"], v["dry_run"]) for v in run.verdicts} == {
        "ok": ("pass", False), "shown": ("fail", True)}


def test_counters_and_next_due():
    run = _run_rounds(Analysis(checks=("ok",), failure_limit=5, interval=60),
                      [{"rate": 0.5}, {"rate": 0.92}, {"rate": 0.97}])

    assert (run.rounds, run.failures, run.inconclusives, run.passed) == (3, 1, 1, True)
    assert run.next_due == 900 + 60


# The decisions analysis drives, replayed: measurements come from a scripted target.


class Target:
    def __init__(self, script):
        self.script = script

    def values(self, now: float) -> dict[str, float | None]:
        return self.script(now)


def replay(target: Target, until: float = 10_000, policy: Policy = Policy(auto_approve=True)):
    world = World(plan, answers=target.values, policy=policy, now=0.0,
                  state=RolloutState(id="r", plan="judged"))
    world.record({"type": "created"})
    world.run(until)
    return world.state, world.events


def test_healthy_target_is_promoted_after_each_bake():
    state, log = replay(Target(lambda now: {"rate": 0.99, "lat": 100, "base": 100}))

    assert state.phase == "succeeded"
    baking = [e["since"] for e in log if e["type"] == "stage-baking"]
    completed = [e for e in log if e["type"] == "stage-completed"]
    assert len(baking) == 2 and len(completed) == 2


def test_failing_check_rolls_back_with_its_reason():
    state, log = replay(Target(lambda now: {"rate": 0.99, "lat": 100 if now < 1500 else 150,
                                            "base": 100}))

    assert state.phase == "rolled-back"
    assert state.reason.startswith("stage analysis: failed (1) > failure_limit (0): slow: "
                                   "last = 150 vs baseline base 100 (+50.0%)")
    assert [e["type"] for e in log if e["type"].startswith("rollback")] == ["rollback-started"]


def test_inconclusive_pauses_and_never_promotes():
    state, log = replay(Target(lambda now: {"rate": None, "lat": None, "base": None}))

    assert state.phase == "paused"
    assert "inconclusive (1) > inconclusive_limit (0)" in state.pause_reason
    assert not [e for e in log if e["type"] == "stage-completed"]


def test_rounds_keep_their_rate_however_long_a_measurement_takes():
    analysis = Analysis(checks=("ok",), interval=300)
    history = Measurements()
    history = history.add("rate", Sample(300.25, 0.99), 3600)

    late = assess(plan, analysis, "stage", Run(started=0, next_due=300), history, 300.25)
    after_a_pause = assess(plan, analysis, "stage", Run(started=0, next_due=300), history,
                           4000)

    assert late.next_due == 600
    assert after_a_pause.next_due == 4300

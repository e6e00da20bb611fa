"""The decision core, driven with no network and no clock: a plan, events and times in,
decisions out. Each test replays the rollout the way the reconcile loop would."""

from __future__ import annotations

import pytest

from rollout_cli.engine import (
    Call,
    Finished,
    Policy,
    RolloutState,
    Wait,
    apply,
    decide,
    from_json,
)
from rollout_cli.plan import load_text
from tests.engine.world import World

PLAN = """\
version: 1
name: tiny
target: {base_url: "http://127.0.0.1:9"}
traffic: {request: POST /weights, json: {modern: "{{ percentage }}"}, idempotent: true}
stages:
  - name: prepare
    steps:
      - request: POST /start
        capture: {test_id: id}
      - request: GET /health
  - {name: canary, percentage: 10, bake: 1h, gate: manual}
  - {name: full, percentage: 100, bake: 2h}
rollback:
  - request: POST /off
    idempotent: true
  - request: POST /alert
"""


@pytest.fixture
def replay() -> World:
    replay = World(load_text(PLAN, "tiny.yaml", {}).plan)
    replay.record({"type": "created", "plan_digest": "d"})
    return replay


def test_runs_steps_then_traffic_then_bakes(replay):
    wait = replay.until_wait()

    assert replay.log == ["stage-started", "step:0:0", "step:0:1", "stage-completed",
                          "stage-started", "traffic:1", "stage-baking"]
    assert wait == Wait(1000.0 + 3600, "stage 'canary' bakes until 4600.000")
    assert replay.state.captures == {"test_id": "t-1"}
    assert (replay.state.phase, replay.state.stage, replay.state.traffic_applied) == \
        ("running", 1, True)


def test_manual_gate_waits_for_a_person_then_continues(replay):
    replay.until_wait()
    replay.now += 3600

    gate = replay.until_wait()
    assert gate.on_person and "run `rollout advance`" in gate.reason
    assert replay.state.phase == "waiting-gate"

    replay.record({"type": "gate-approved", "who": "ana@host"})
    bake = replay.until_wait()
    assert bake.until == replay.now + 7200
    replay.now += 7200
    done = replay.until_wait()
    assert done == Finished("succeeded", "every stage completed")
    assert replay.log[-3:] == ["stage-baking", "stage-completed", "succeeded"]


def test_auto_approve_opens_gates(replay):
    replay.policy = Policy(auto_approve=True)
    replay.until_wait()
    replay.now += 3600

    replay.until_wait()

    assert "gate-approved" in replay.log and replay.state.stage == 2


def test_bake_is_not_over_a_second_early(replay):
    replay.until_wait()
    replay.now += 3599.9

    assert isinstance(replay.until_wait(), Wait)
    assert replay.state.phase == "running"


def test_forced_advance_skips_the_rest_of_the_bake(replay):
    replay.until_wait()
    replay.record({"type": "gate-approved", "forced": True, "who": "ana", "reason": "hotfix"})

    wait = replay.until_wait()

    assert replay.state.stage == 2 and wait.until == replay.now + 7200


def test_full_promotion_skips_every_remaining_bake_and_gate(replay):
    replay.until_wait()
    replay.record({"type": "promoted-full", "who": "ana"})

    assert replay.until_wait() == Finished("succeeded", "every stage completed")
    assert replay.log.count("traffic:2") == 1


def test_failed_step_starts_the_rollback_which_runs_every_step(replay):
    replay.failing = {"step:0:1"}

    end = replay.until_wait()

    assert replay.log[-5:] == ["step:0:1", "rollback-started", "rollback#1:0", "rollback#1:1",
                               "rolled-back"]
    assert end == Finished("rolled-back", "step failed: step:0:1: boom")


def test_a_failing_rollback_step_does_not_stop_the_others(replay):
    replay.failing = {"step:0:1", "rollback#1:0"}

    end = replay.until_wait()

    assert replay.log[-3:] == ["rollback#1:0", "rollback#1:1", "rollback-failed"]
    assert isinstance(end, Finished) and end.phase == "rollback-failed"
    assert "rollback incomplete: rollback#1:0: boom" in (end.reason or "")


def test_rollback_can_run_again_after_it_ended(replay):
    replay.failing = {"step:0:1"}
    replay.until_wait()

    replay.record({"type": "rollback-started", "reason": "again"})
    replay.until_wait()

    assert replay.log[-3:] == ["rollback#2:0", "rollback#2:1", "rolled-back"]


def test_idempotent_call_without_outcome_is_sent_again(replay):
    replay.record({"type": "stage-started", "stage": 0, "name": "prepare"})
    replay.record({"type": "intent", "call_id": "step:0:1", "kind": "step", "stage": 0,
                   "step": 1, "line": "GET /health", "idempotent": True})

    assert decide(replay.plan, replay.state, replay.now) == Call("step:0:1", "step", 0, 1)


def test_non_idempotent_call_without_outcome_pauses_and_names_it(replay):
    replay.record({"type": "stage-started", "stage": 0, "name": "prepare"})
    replay.record({"type": "intent", "call_id": "step:0:0", "kind": "step", "stage": 0,
                   "step": 0, "line": "POST http://127.0.0.1:9/start", "idempotent": False})

    decision = replay.until_wait()

    assert replay.state.phase == "paused"
    assert replay.state.uncertain is not None
    assert replay.state.uncertain.line == "POST http://127.0.0.1:9/start"
    assert "--assume-applied" in decision.reason and "--resend" in decision.reason


@pytest.mark.parametrize(("how", "next_call"), [("assume-applied", "step:0:1"),
                                                 ("resend", "step:0:0")])
def test_operator_resolves_an_uncertain_call(replay, how, next_call):
    replay.record({"type": "stage-started", "stage": 0, "name": "prepare"})
    replay.record({"type": "intent", "call_id": "step:0:0", "kind": "step", "stage": 0,
                   "step": 0, "line": "POST /start", "idempotent": False})
    replay.until_wait()

    replay.record({"type": "call-resolved", "call_id": "step:0:0", "how": how})
    replay.record({"type": "resumed"})
    replay.log.clear()
    replay.until_wait()

    assert replay.log[0] == next_call


def test_uncertain_non_idempotent_rollback_step_is_not_resent(replay):
    replay.record({"type": "rollback-started", "reason": "x"})
    replay.record({"type": "intent", "call_id": "rollback#1:1", "kind": "rollback",
                   "stage": None, "step": 1, "line": "POST /alert", "idempotent": False})
    replay.state = apply(replay.state, from_json({"type": "outcome", "call_id": "rollback#1:1",
                                                  "ok": True, "seq": 99, "time": 1}))
    replay.record({"type": "intent", "call_id": "rollback#1:1", "kind": "rollback",
                   "stage": None, "step": 1, "line": "POST /alert", "idempotent": False})

    end = replay.until_wait()

    assert end.phase == "rolled-back"
    assert end.reason.startswith("x; not re-sent, may not have been applied (not idempotent, "
                                 "no answer): POST /alert. Check the target")
    assert replay.state.rollback_uncertain == ("POST /alert",)


def test_paused_rollout_does_nothing_until_resumed(replay):
    replay.until_wait()
    replay.record({"type": "paused", "reason": "looks odd"})
    replay.now += 10_000

    assert replay.until_wait() == Wait(None, "looks odd")
    replay.record({"type": "resumed"})
    # Paused time does not count: the canary's hour of bake starts over from here.
    assert replay.until_wait().until == replay.now + 3600
    replay.now += 3600
    assert replay.until_wait().on_person  # the canary's manual gate


def test_state_round_trips_through_json(replay):
    replay.until_wait()

    assert RolloutState.from_json(replay.state.to_json()) == replay.state


def test_step_failure_without_rollback_steps_fails_the_rollout():
    replay = World(load_text(PLAN.split("rollback:")[0], "t.yaml", {}).plan)
    replay.record({"type": "created"})
    replay.failing = {"step:0:0"}

    end = replay.until_wait()

    assert end == Finished("failed", "step failed: step:0:0: boom (the plan has no rollback "
                                     "steps)")


def test_success_is_never_reported_while_traffic_is_short_of_the_last_stage(replay):
    replay.policy = Policy(auto_approve=True)
    replay.traffic_at = 10                      # the target kept 10%, whatever was asked
    replay.until_wait()
    replay.now += 3600
    replay.until_wait()
    assert replay.state.stage == 2 and replay.state.percentage == 10
    replay.now += 7200

    end = replay.until_wait()

    assert replay.state.phase == "paused", end
    assert "10%" in replay.state.pause_reason and "100%" in replay.state.pause_reason


GUARDED = PLAN.replace("      - request: GET /health\n",
                       "      - request: GET /health\n        on_failure: abort\n")


def test_a_failed_step_with_on_failure_abort_fails_without_the_rollback():
    replay = World(load_text(GUARDED, "tiny.yaml", {}).plan, failing={"step:0:1"})
    replay.record({"type": "created", "plan_digest": "d"})

    end = replay.until_wait()

    assert end.phase == "failed"
    assert "on_failure: abort" in end.reason and "step:0:1" in replay.state.reason
    assert not [c for c in replay.log if c.startswith("rollback")]


def test_a_failed_step_otherwise_starts_the_rollback(replay):
    replay.failing = {"step:0:1"}

    end = replay.until_wait()

    assert end.phase == "rolled-back"
    assert "rollback#1:0" in replay.log


def test_applying_an_event_leaves_the_old_state_as_it_was(replay):
    replay.until_wait()
    before = replay.state
    saved = before.to_json()
    measured = {"type": "measured", "values": {"rate": 0.99}, "keep": {"rate": 60.0},
                "seq": before.seq + 1, "time": replay.now}

    after = apply(before, from_json(measured))
    other = apply(before, from_json({**measured, "values": {"rate": 0.5}}))

    assert before.to_json() == saved
    assert [s.value for s in after.measurements.of("rate")] == [0.99]
    assert [s.value for s in other.measurements.of("rate")] == [0.5]

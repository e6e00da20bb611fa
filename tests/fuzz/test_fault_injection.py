"""Fault injection (issue 7): the brain plan against a target whose admin API fails.

Seeded runs where 20% of admin calls are answered 500/503 (not applied) or time out (applied,
never answered), checked for wrong promotions, duplicated non-idempotent calls, incomplete
rollbacks, wrong outcomes and a live state that its journal would not rebuild; then the
one non-idempotent call (the rollback's emergency alert) under chosen faults; then the
checkers themselves on runs that break each property. bench/faults.py defines the
properties and prints the counts for 200 seeds; ROLLOUT_FAULT_SEEDS raises the budget here.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from bench import faults
from rollout_cli.engine import RolloutState
from rollout_cli.operations import Context, Result, rollback
from rollout_cli.plan import load_plan
from rollout_cli.plan.fields import dump_model, replace
from rollout_cli.sandbox import SandboxTransport, VirtualClock, create_sandbox, sandbox_client
from rollout_cli.sandbox.app import SandboxApp
from rollout_cli.simulation import START, simulate

SEEDS = int(os.environ.get("ROLLOUT_FAULT_SEEDS", "8"))
ALERT = "/api/admin/alerts/emergency"
ROUTES = faults.non_idempotent_routes(load_plan(faults.REAL_PLAN, {}).plan)


@pytest.mark.parametrize("scenario", list(faults.SCENARIOS))
def test_seeded_runs_under_admin_faults_keep_every_property(scenario):
    reports = [faults.run(scenario, seed) for seed in range(SEEDS)]

    assert [miss for report in reports for miss in report.describe()] == []
    assert sum(sum(r.mutation_faults.values()) for r in reports) > 0  # faults hit what matters
    top = max(r.max_percentage or 0 for r in reports)
    if scenario == "flaky-degrade-at-50":
        assert top == 50
        assert all(r.rollback.started and (r.rollback.at_once or r.rollback.recovered)
                   for r in reports)
    else:
        assert top == 100


def test_the_real_plan_under_faults_keeps_every_property():
    report = faults.run("flaky-degrade-at-50", 3, plan_path=faults.REAL_PLAN)

    assert report.describe() == []
    # rollback-failed only when the emergency alert (not idempotent) got a 500: describe()
    # then holds the rollback from the plan, once the target recovers, to completing.
    assert report.phase in ("rolled-back", "rollback-failed") and report.max_percentage == 50


def test_the_fault_plan_is_the_real_plan_with_shorter_bakes():
    def without_bakes(path: Path) -> dict:
        plan = load_plan(path, {}).plan
        stages = [replace(stage, bake=None) for stage in plan.stages]
        return dump_model(replace(plan, stages=stages))

    assert without_bakes(faults.PLAN) == without_bakes(faults.REAL_PLAN)
    assert ROUTES and all(method == "POST" for method, _ in ROUTES)


def test_a_simulated_run_records_each_measurement_once():
    # The reconcile loop used to fold every event twice into the live state's (mutable)
    # measurements: min_samples counted each measurement twice, and a resumed rollout,
    # rebuilt from the journal, saw half the samples the live one had judged.
    seen: list[tuple[dict, RolloutState]] = []
    simulate(faults.PLAN, "degrade-at-50", seed=2, env={},
             on_event=lambda event, state: seen.append((event.to_record(), state)))

    state = seen[-1][1]
    measured = [e["time"] for e, _ in seen
                if e["type"] == "measured" and "modern_success_rate" in e["values"]]
    samples = [s.time for s in state.measurements.of("modern_success_rate")]
    assert samples and samples == measured[-len(samples):]
    assert len(set(samples)) == len(samples)


# --- the non-idempotent call under chosen faults ---------------------------------------


class ScriptedFaults(httpx.BaseTransport):
    """Faults on chosen calls, in order: a "500" never reaches the target; a "timeout"
    lets the target apply the call, then the answer is lost."""

    def __init__(self, app: SandboxApp, script: dict[str, list[str]]):
        self.inner = SandboxTransport(app)
        self.script = {call: list(kinds) for call, kinds in script.items()}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        queue = self.script.get(f"{request.method} {request.url.path}")
        fault = queue.pop(0) if queue else None
        if fault == "500":
            return httpx.Response(500, json={"error": "scripted fault"}, request=request)
        response = self.inner.handle_request(request)
        if fault == "timeout":
            raise httpx.ReadTimeout("scripted: applied, never answered", request=request)
        return response


def modern_at_50() -> SandboxApp:
    app = create_sandbox("healthy", seed=1, clock=VirtualClock(START))
    with sandbox_client(app) as client:
        client.post("/api/admin/ab-testing/start",
                    json={"testId": "t", "rolloutPercentage": 50, "enabled": True})
    app.clock.advance(600)
    return app


def roll_back(app: SandboxApp, state_dir: Path, plan: Path = faults.REAL_PLAN,
              script: dict[str, list[str]] | None = None) -> tuple[Result, faults.Recorder]:
    """`rollout rollback --plan PLAN` against ``app``, with ``script``'s faults."""
    recorder = faults.Recorder(app)
    ctx = Context.at(state_dir, transport=ScriptedFaults(app, script or {}), env={},
                  now=app.clock.now, sleep=app.clock.advance, on_event=recorder)
    return rollback(ctx, None, plan, "fault injection"), recorder


def alerts_applied(app: SandboxApp) -> int:
    return sum(faults.applied(c) for c in app.calls.since(0) if c.path == ALERT)


def test_timed_out_alert_is_not_sent_again_and_the_rollback_completes(tmp_path):
    app = modern_at_50()

    result, recorder = roll_back(app, tmp_path, script={f"POST {ALERT}": ["timeout"]})

    assert result.state.phase == "rolled-back"
    assert [line.endswith(ALERT) for line in result.state.rollback_uncertain] == [True]
    assert alerts_applied(app) == 1
    assert faults.duplicated_calls(recorder, app.calls.since(0), ROUTES) == []
    assert faults.unsafe_target(faults.target_state(app)) == []


def test_alert_answered_500_fails_the_rollback_until_the_target_recovers(tmp_path):
    app = modern_at_50()

    failed, _ = roll_back(app, tmp_path, script={f"POST {ALERT}": ["500"]})

    assert failed.state.phase == "rollback-failed" and failed.exit_code == 5
    assert ALERT in failed.state.reason and "500" in failed.state.reason
    assert alerts_applied(app) == 0
    assert faults.unsafe_target(faults.target_state(app)) == []  # the idempotent steps ran

    again, _ = roll_back(app, tmp_path)

    assert again.state.phase == "rolled-back"
    assert alerts_applied(app) == 1


def test_once_the_target_recovers_the_rollback_from_the_plan_completes():
    app = create_sandbox(faults.SCENARIOS["flaky-degrade-at-50"], seed=0,
                         clock=VirtualClock(START))
    with sandbox_client(app) as client:
        for _ in range(20):  # the target is still flaky: start the test until it is applied
            try:
                started = client.post("/api/admin/ab-testing/start",
                                      json={"testId": "t", "rolloutPercentage": 50})
            except httpx.ReadTimeout:
                break  # applied, never answered
            if started.status_code == 200:
                break
    assert faults.target_state(app)["modernTrafficPercentage"] == 50

    healthy, phase = faults.recover(app, faults.REAL_PLAN)

    assert phase == "rolled-back"
    assert [c.fault for c in healthy.calls.since(0)] == [None] * 4
    assert faults.unsafe_target(faults.target_state(app)) == []


# --- the checkers catch what they look for ----------------------------------------------


def test_duplicate_checker_catches_a_plan_that_resends_the_alert(tmp_path):
    text = faults.REAL_PLAN.read_text()
    message = "    json: {message: Brain API rolled back to legacy implementation}\n"
    assert text.count(message) == 1
    plan = tmp_path / "resends.yaml"
    plan.write_text(text.replace(message, message + "    idempotent: true\n"))
    app = modern_at_50()

    result, recorder = roll_back(app, tmp_path / "state", plan,
                                 script={f"POST {ALERT}": ["timeout"]})

    assert result.state.phase == "rolled-back"
    assert alerts_applied(app) == 2
    problems = faults.duplicated_calls(recorder, app.calls.since(0), ROUTES)
    assert any("applied 2 times for one intent" in p for p in problems)
    assert any("sent again after an answer that may have applied it" in p for p in problems)


def call(seq: int, path: str, body: dict | None = None, fault: str | None = None,
         status: int = 200, method: str = "POST") -> SimpleNamespace:
    return SimpleNamespace(seq=seq, time=float(seq), method=method, path=path, body=body,
                           status=status, fault=fault)


def analysis(stage: int, *phases: str) -> dict:
    verdicts = [{"check": f"c{i}", "phase": p, "reason": f"c{i} -> {p}", "dry_run": False}
                for i, p in enumerate(phases)]
    return {"type": "analysis", "scope": "stage", "stage": stage,
            "run": {"passed": all(p == "pass" for p in phases), "verdicts": verdicts}}


UPDATE = "/api/admin/ab-testing/update"
PLAN = load_plan(faults.PLAN, {}).plan   # stages 3..7: canary-10, -25, -50, -75, full


@pytest.mark.parametrize(("events", "calls", "ceiling", "expected"), [
    ([analysis(3, "pass"), {"type": "stage-completed", "stage": 3}],
     [call(1, UPDATE, {"rolloutPercentage": 10}), call(3, UPDATE, {"rolloutPercentage": 25})],
     100, []),
    ([analysis(3, "pass", "inconclusive"), {"type": "stage-completed", "stage": 3}],
     [call(3, UPDATE, {"rolloutPercentage": 25})],
     100, ["stage 'canary-10' completed after a stage analysis that did not pass: c1 -> "
           "inconclusive"]),
    ([], [call(1, UPDATE, {"rolloutPercentage": 25})],
     100, ["set modern to 25% at 1s; the analysis allowed 10%"]),
    ([], [call(1, UPDATE, {"rolloutPercentage": 25}, fault="503")], 100, []),
    ([], [call(1, UPDATE, {"rolloutPercentage": 25}, fault="timeout")],
     100, ["set modern to 25% at 1s; the analysis allowed 10%"]),
    ([analysis(3, "pass"), {"type": "stage-completed", "stage": 3},
      {"type": "rollback-started"}],
     [call(3, UPDATE, {"rolloutPercentage": 25})],
     100, ["set modern to 25% at 3s; the analysis allowed 0%"]),
    ([analysis(3, "pass"), {"type": "stage-completed", "stage": 3}],
     [call(3, UPDATE, {"rolloutPercentage": 25})],
     20, ["set modern to 25% at 3s; the scenario's ceiling is 20%"]),
    ([{"type": "analysis", "scope": "background", "stage": 3,
       "run": {"passed": True, "verdicts": [{"phase": "error", "reason": "m failed",
                                             "dry_run": False}]}}],
     [], 100, ["background analysis counted as passed: m failed"]),
])
def test_promotion_checker(events, calls, ceiling, expected):
    recorder = SimpleNamespace(events=events, marks=[2] * len(events))

    problems = faults.wrong_promotions(PLAN, recorder, calls, ceiling)

    assert [p.split("ab-testing/update ")[-1] for p in problems] == expected


@pytest.mark.parametrize(("state", "expected"), [
    ({"modernTrafficPercentage": 0, "flags": {"USE_MODERN_BRAIN_API": False},
      "abTest": {"status": "stopped", "rolloutPercentage": 0, "emergencyStopped": True}}, []),
    ({"modernTrafficPercentage": 50, "flags": {"USE_MODERN_BRAIN_API": False},
      "abTest": {"status": "running", "rolloutPercentage": 50, "emergencyStopped": False}},
     ["modern still serves 50%", "A/B test running at 50%"]),
    ({"modernTrafficPercentage": 0, "flags": {"USE_MODERN_BRAIN_API": False},
      "abTest": {"status": "stopped", "rolloutPercentage": 0, "emergencyStopped": False}},
     ["A/B test not emergency-stopped"]),
])
def test_rollback_target_checker(state, expected):
    assert faults.unsafe_target(state) == expected


def step_failure(answers: tuple[str | None, ...], attempts: int = 4
                 ) -> tuple[SimpleNamespace, list[SimpleNamespace]]:
    line = "POST http://127.0.0.1:8080/api/admin/dashboard/start"
    events = [{"type": "intent", "call_id": "step:1:0", "kind": "step", "line": line},
              {"type": "outcome", "call_id": "step:1:0", "ok": False, "attempts": attempts},
              {"type": "rollback-started"}]
    calls = [call(i + 1, "/api/admin/dashboard/start", fault=fault,
                  status=int(fault) if fault in ("500", "503") else 200)
             for i, fault in enumerate(answers)]
    return SimpleNamespace(events=events, marks=[0, len(answers), len(answers)]), calls


@pytest.mark.parametrize(("answers", "excused"), [
    (("500", "503", "timeout", "503"), True),
    (("500", "503", None, "503"), False),     # one attempt got through: not the faults' doing
    (("500", "503", "timeout"), False),       # fewer sends than the outcome's attempts
])
def test_a_healthy_run_may_roll_back_only_when_faults_exhausted_a_steps_retries(answers,
                                                                                 excused):
    recorder, calls = step_failure(answers)
    rollback_ok = faults.RollbackCheck(started=True, at_once=True)

    problems, excuse = faults.judge_outcome("flaky-admin", "rolled-back", "step failed",
                                            recorder, calls, rollback_ok)

    assert (excuse is not None, problems == []) == (excused, excused)
    problems, excuse = faults.judge_outcome("flaky-admin", "paused", "why", recorder, calls,
                                            rollback_ok)
    assert excuse is None and problems == ["ended paused (expected succeeded): why"]

"""Fault injection (issue 7): the brain plan's admin calls against a target that misbehaves.

N seeded runs of each scenario below, where 20% of admin calls (metric reads included)
are answered 500 or 503 without being applied, or time out after being applied (the
sandbox's `flaky-admin` faults). Every run is checked for:

- **wrong promotions**: the modern share the target was told to serve ever exceeding
  what the analysis allowed at that moment (the first traffic stage's share from the
  start; the next stage's once a stage completed after a passing stage analysis; nothing
  higher once a rollback began), or beyond the scenario's ceiling (50% for
  degrade-at-50: modern degrades there, so no run may go past it); a traffic stage
  completing after a stage analysis that did not pass; an analysis round with a failing
  or erroring check counted as passed.
- **duplicated non-idempotent calls**: a call that plans/brain-api.yaml does not mark
  idempotent (its one such call is the rollback's `POST /api/admin/alerts/emergency`)
  applied by the target more than once for one intent, sent again after an answer
  that may have applied it (a timeout, a 500), or sent without an intent in the journal.
- **incomplete rollbacks**: a run that starts a rollback must end with the target at 0%
  modern (flag off, A/B test stopped, emergency stop applied), every idempotent rollback
  step answered 2xx, every non-idempotent one applied exactly once, and the rollout
  `rolled-back`. A timed-out alert was applied by the sandbox; the tool does not re-send
  it and ends `rolled-back`. The one exception the tool cannot avoid without risking a
  duplicate: an alert answered 500 may or may not have been applied, so it is not
  re-sent and the run ends `rollback-failed` (exit 5) naming it; then the target
  recovers (no more faults) and `rollout rollback --plan` must finish the job:
  `rolled-back`, the alert raised once in all.
- **outcomes**: `flaky-degrade-at-50` runs must roll back (or end as just said);
  `flaky-admin` runs must succeed, unless one step got an injected fault on every
  attempt the plan allows (4): a failed step starts the rollback (README, "How a rollout
  runs"), about 3% of runs at 20% faults, and that rollback must be complete. The state
  the engine kept live must equal the one its journal rebuilds (what `resume` sees).

The plan is tests/data/brain-api-faults.yaml: plans/brain-api.yaml's requests, checks,
analysis and rollback with shorter bakes (a test asserts it), so 200 seeds take minutes.

    python bench/faults.py [N] [PLAN]     # N seeds per scenario, default 200; exit 1 on a miss
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rollout_cli.engine import Event, RolloutState, fold, from_json
from rollout_cli.plan import load_plan
from rollout_cli.plan.models import Plan, RequestStep
from rollout_cli.sandbox import SandboxTransport, VirtualClock, create_sandbox, sandbox_client
from rollout_cli.sandbox.app import SandboxApp
from rollout_cli.sandbox.scenarios import PRESETS, AdminFaults, Scenario
from rollout_cli.simulation import START, simulate

ROOT = Path(__file__).resolve().parent.parent
REAL_PLAN = ROOT / "plans" / "brain-api.yaml"
PLAN = ROOT / "tests" / "data" / "brain-api-faults.yaml"
ENV: dict[str, str] = {}
MODERN_FLAG = "USE_MODERN_BRAIN_API"

FLAKY = PRESETS["flaky-admin"].faults
SCENARIOS: dict[str, Scenario] = {
    "flaky-admin": PRESETS["flaky-admin"],
    "flaky-degrade-at-50": replace(PRESETS["degrade-at-50"], name="flaky-degrade-at-50",
                                   faults=FLAKY),
}
# The highest modern share each scenario may ever reach, and how its runs must end.
CEILING = {"flaky-admin": 100.0, "flaky-degrade-at-50": 50.0}
EXPECTED = {"flaky-admin": "succeeded", "flaky-degrade-at-50": "rolled-back"}

PROPERTIES = ("promotion", "duplicate", "rollback", "outcome", "journal")


# --- what happened: the journal, stamped with the target's call log ----------------------


class Recorder:
    """An ``on_event`` sink keeping the journal, each event stamped with the last call-log
    sequence number the target had reached, so calls can be attributed to their intent."""

    MARKED = frozenset({"intent", "outcome", "rollback-started", "stage-completed"})

    def __init__(self, app: SandboxApp):
        self.app = app
        self.events: list[dict[str, Any]] = []
        self.marks: list[int] = []
        self.state: RolloutState | None = None
        self._seen = 0

    def __call__(self, event: Event, state: RolloutState) -> None:
        self.events.append(event.to_record())  # as the journal holds it
        if event.TYPE in self.MARKED:
            news = self.app.calls.since(self._seen)
            if news:
                self._seen = news[-1].seq
        self.marks.append(self._seen)
        self.state = state

    def calls(self) -> list[Any]:
        return self.app.calls.since(0)


def applied(call: Any) -> bool:
    """Did the target apply it? 500/503 faults reject a call; a timeout applies it."""
    return call.fault not in ("500", "503") and 200 <= call.status < 300


def declined(call: Any) -> bool:
    """An answer that says the call was not processed: the only one after which a
    non-idempotent call may be sent again (rollout_cli/drivers/http.py)."""
    return call.fault == "503" or (call.fault is None and call.status in (429, 503))


def _route(method: str, target: str) -> tuple[str, re.Pattern[str]]:
    path = urlsplit(target).path if "://" in target else target.split("?", 1)[0]
    parts = re.split(r"\{\{.*?\}\}", path)
    return method.upper(), re.compile("[^/]+".join(re.escape(p) for p in parts) + "$")


def non_idempotent_routes(plan: Plan) -> list[tuple[str, re.Pattern[str]]]:
    """(method, path pattern) of every request the plan does not mark idempotent."""
    steps = [s for stage in plan.stages for s in stage.steps] + list(plan.rollback)
    if plan.traffic is not None:
        steps.append(plan.traffic)
    return [_route(s.request.method, s.request.target) for s in steps
            if isinstance(s, RequestStep) and not s.is_idempotent]


def _matches(routes: Iterable[tuple[str, re.Pattern[str]]], method: str, path: str) -> bool:
    return any(m == method and p.match(path) for m, p in routes)


def _line_route(line: str) -> tuple[str, str]:
    method, _, url = line.partition(" ")
    return method, urlsplit(url).path


# --- the properties ----------------------------------------------------------------------


def duplicated_calls(rec: Recorder, calls: list[Any],
                     routes: list[tuple[str, re.Pattern[str]]]) -> list[str]:
    """Non-idempotent calls applied twice for one intent, re-sent after an answer that may
    have applied them, or sent without an intent."""
    opened: dict[str, tuple[str, int]] = {}
    windows: list[tuple[str, int, int]] = []        # (intent line, after seq, up to seq)
    for event, mark in zip(rec.events, rec.marks, strict=True):
        if event["type"] == "intent" and _matches(routes, *_line_route(event["line"])):
            opened[event["call_id"]] = (event["line"], mark)
        elif event["type"] == "outcome" and event["call_id"] in opened:
            line, start = opened.pop(event["call_id"])
            windows.append((line, start, mark))
    windows += [(line, start, 1 << 62) for line, start in opened.values()]
    problems: list[str] = []
    sends: dict[int, list[Any]] = {}
    for call in calls:
        if not _matches(routes, call.method, call.path):
            continue
        owner = next((i for i, (line, start, end) in enumerate(windows)
                      if start < call.seq <= end and _line_route(line) ==
                      (call.method, call.path)), None)
        if owner is None:
            problems.append(f"{call.method} {call.path} sent at {call.time:.0f}s "
                            "without an intent in the journal")
        else:
            sends.setdefault(owner, []).append(call)
    for owner, group in sends.items():
        line = windows[owner][0]
        faults = [c.fault or str(c.status) for c in group]
        if sum(applied(c) for c in group) > 1:
            problems.append(f"{line}: applied {sum(applied(c) for c in group)} times for "
                            f"one intent (answers: {', '.join(faults)})")
        if not all(declined(c) for c in group[:-1]):
            problems.append(f"{line}: sent again after an answer that may have applied it "
                            f"(answers: {', '.join(faults)})")
    return problems


def _share_set(call: Any) -> float | None:
    """The modern share an applied call tells the brain API to serve, if it sets one."""
    body = call.body if isinstance(call.body, dict) else {}
    if call.method != "POST":
        return None
    if call.path in ("/api/admin/ab-testing/start", "/api/admin/ab-testing/update"):
        value = body.get("rolloutPercentage")
        return float(value) if isinstance(value, int | float) else None
    if call.path == "/api/admin/feature-flags/enable" and body.get("flag") == MODERN_FLAG:
        return 100.0
    return None


def _acting(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in run["verdicts"] if not v.get("dry_run")]


def wrong_promotions(plan: Plan, rec: Recorder, calls: list[Any], ceiling: float
                     ) -> list[str]:
    """Every way the target could have been sent further than the analysis allowed."""
    traffic = [i for i, s in enumerate(plan.stages) if s.percentage is not None]
    problems: list[str] = []
    allowed: list[tuple[int, float]] = [(0, plan.stages[traffic[0]].percentage or 0.0)]
    last_stage_run: dict[int, dict[str, Any]] = {}
    rollback_at: int | None = None
    for event, mark in zip(rec.events, rec.marks, strict=True):
        kind = event["type"]
        if kind == "analysis":
            run = event["run"]
            if event["scope"] == "stage":
                last_stage_run[event["stage"]] = run
            bad = [v["reason"] for v in _acting(run) if v["phase"] in ("fail", "error")]
            if run["passed"] and bad:
                problems.append(f"{event['scope']} analysis counted as passed: {bad[0]}")
        elif kind == "stage-completed" and event["stage"] in traffic:
            index = event["stage"]
            run = last_stage_run.get(index)
            if plan.analysis_for(plan.stages[index]) is not None and (
                    run is None or any(v["phase"] != "pass" for v in _acting(run))):
                why = "no analysis" if run is None else "; ".join(
                    v["reason"] for v in _acting(run) if v["phase"] != "pass")
                problems.append(f"stage {plan.stages[index].name!r} completed after a stage "
                                f"analysis that did not pass: {why}")
            later = [i for i in traffic if i > index]
            if later and rollback_at is None:
                allowed.append((mark, plan.stages[later[0]].percentage or 0.0))
        elif kind == "rollback-started" and rollback_at is None:
            rollback_at = mark
    for call in calls:
        share = _share_set(call) if applied(call) else None
        if share is None:
            continue
        limit = max(p for since, p in allowed if since < call.seq or since == 0)
        if rollback_at is not None and call.seq > rollback_at and share > 0:
            limit = 0.0
        what = f"{call.method} {call.path} set modern to {share:g}% at {call.time:.0f}s"
        if share > limit:
            problems.append(f"{what}; the analysis allowed {limit:g}%")
        elif share > ceiling:
            problems.append(f"{what}; the scenario's ceiling is {ceiling:g}%")
    return problems


def target_state(app: SandboxApp) -> dict[str, Any]:
    with sandbox_client(app) as client:  # _sandbox/* is never flaky and never logged
        state: dict[str, Any] = client.get("/api/admin/_sandbox/state").json()
    return state


def unsafe_target(state: dict[str, Any]) -> list[str]:
    """What the emergency procedure should have left, and did not."""
    test = state["abTest"]
    problems = []
    if state["modernTrafficPercentage"] != 0:
        problems.append(f"modern still serves {state['modernTrafficPercentage']}%")
    if state["flags"].get(MODERN_FLAG):
        problems.append(f"{MODERN_FLAG} still enabled")
    if test["status"] == "running" or test["rolloutPercentage"] != 0:
        problems.append(f"A/B test {test['status']} at {test['rolloutPercentage']}%")
    if test["status"] == "stopped" and not test.get("emergencyStopped"):
        problems.append("A/B test not emergency-stopped")
    return problems


@dataclass
class RollbackCheck:
    started: bool = False
    at_once: bool = False          # ended rolled-back without help
    recovered: bool = False        # needed (and got) the re-run once the target recovered
    problems: list[str] = field(default_factory=list)


def _rollback_outcomes(rec: Recorder) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    intents = {e["call_id"]: e for e in rec.events
               if e["type"] == "intent" and e["kind"] == "rollback"}
    return [(intents[e["call_id"]], e) for e in rec.events
            if e["type"] == "outcome" and e["call_id"] in intents]


def check_rollback(plan: Plan, plan_path: Path, rec: Recorder,
                   routes: list[tuple[str, re.Pattern[str]]]) -> RollbackCheck:
    check = RollbackCheck(started=any(e["type"] == "rollback-started" for e in rec.events))
    if not check.started:
        return check
    assert rec.state is not None
    problems = check.problems
    # Only a non-idempotent step answered 500/502/504 may end the run rollback-failed: it
    # may have been applied, so it is not re-sent (rollout_cli/drivers/http.py).
    ambiguous = 0
    for intent, outcome in _rollback_outcomes(rec):
        if outcome.get("ok") or outcome.get("uncertain"):
            continue
        if not intent["idempotent"] and outcome.get("status") in (500, 502, 504):
            ambiguous += 1
        else:
            problems.append(f"rollback step {intent['line']} failed: {outcome.get('error')}")
    logs = [rec.calls()]
    phase = rec.state.phase
    if phase == "rolled-back":
        check.at_once = True
    elif phase == "rollback-failed" and ambiguous and not problems:
        healthy, phase = recover(rec.app, plan_path)
        logs.append(healthy.calls.since(0))
        check.recovered = phase == "rolled-back"
        if not check.recovered:
            problems.append(f"after the target recovered, the rollback ended {phase}")
    else:
        problems.append(f"rollback ended {phase}: {rec.state.reason}")
    problems += [f"target after the rollback: {p}" for p in unsafe_target(target_state(rec.app))]
    once = {(method, pattern.pattern) for method, pattern in routes}
    for step in plan.rollback:
        if not isinstance(step, RequestStep):
            continue
        method, pattern = _route(step.request.method, step.request.target)
        times = sum(applied(c) for log in logs for c in log
                    if c.method == method and pattern.match(c.path))
        if times == 0 or (times > 1 and (method, pattern.pattern) in once):
            problems.append(f"rollback step {step.label!r} applied {times} times")
    return check


def recover(app: SandboxApp, plan_path: Path) -> tuple[SandboxApp, str]:
    """The target recovers (its admin API stops failing) and the operator runs `rollout
    rollback --plan PLAN`, as exit 5 asks; returns the recovered target and the phase."""
    from rollout_cli.operations import Context, rollback

    model = app.model
    model.scenario = replace(model.scenario, faults=AdminFaults())
    healthy = SandboxApp(model)
    with tempfile.TemporaryDirectory() as state_dir:
        ctx = Context.at(state_dir, transport=SandboxTransport(healthy), env=dict(ENV),
                      now=model.clock.now, sleep=model.clock.advance)
        result = rollback(ctx, None, plan_path, "the target recovered: finish the rollback")
    return healthy, result.state.phase


def exhausted_step(rec: Recorder, calls: list[Any]) -> str | None:
    """The step whose failure started the rollback, when every attempt it made was
    answered by an injected fault; None when the failure had any other cause."""
    intents = {e["call_id"]: (e, m) for e, m in zip(rec.events, rec.marks, strict=True)
               if e["type"] == "intent"}
    for event, mark in zip(rec.events, rec.marks, strict=True):
        if event["type"] == "rollback-started":
            return None
        if event["type"] != "outcome" or event.get("ok") or event["call_id"] not in intents:
            continue
        intent, start = intents[event["call_id"]]
        if intent["kind"] not in ("step", "traffic"):
            continue
        method, path = _line_route(intent["line"])
        sent = [c for c in calls if start < c.seq <= mark and (c.method, c.path) ==
                (method, path)]
        if len(sent) == event.get("attempts") and all(c.fault for c in sent):
            return f"{intent['line']} ({', '.join(c.fault for c in sent)})"
        return None
    return None


def judge_outcome(scenario: str, phase: str, reason: str | None, rec: Recorder,
                  calls: list[Any], rollback: RollbackCheck) -> tuple[list[str], str | None]:
    """Problems with how the run ended, and the excuse for an unexpected but right end:

    - a rollback ended `rollback-failed` only because the non-idempotent alert got a 500,
      and completed once the target recovered (see check_rollback);
    - a healthy run rolled back because one step's every attempt (the plan allows 4) was
      answered by an injected fault: a failed step starts the rollback (README, "How a
      rollout runs"), and 0.2**4 per call over ~20 forward calls makes that ~3% of runs.
    """
    expected = EXPECTED[scenario]
    if phase == expected:
        return [], None
    if phase == "rollback-failed" and expected == "rolled-back" and rollback.recovered:
        return [], "rollback-failed (the alert got a 500), complete once the target recovered"
    if expected == "succeeded" and phase == "rolled-back" and not rollback.problems:
        step = exhausted_step(rec, calls)
        if step is not None:
            return [], f"rolled back, every attempt of one step hit a fault: {step}"
    return [f"ended {phase} (expected {expected}): {reason}"], None


def journal_mismatch(rec: Recorder) -> list[str]:
    """The live state must be the one its journal rebuilds (what `resume` would see)."""
    live = rec.state
    assert live is not None
    rebuilt = fold(RolloutState(id=live.id, plan=live.plan), map(from_json, rec.events))
    if rebuilt == live:
        return []
    differing = sorted(k for k in live.__dict__ if getattr(live, k) != getattr(rebuilt, k))
    return [f"live state differs from the journal's in {', '.join(differing)}"]


# --- one run, many runs ------------------------------------------------------------------


@dataclass
class RunReport:
    scenario: str
    seed: int
    phase: str
    reason: str | None
    max_percentage: float | None
    problems: dict[str, list[str]]
    rollback: RollbackCheck
    excuse: str | None              # why an unexpected outcome is still the right one
    faults: Counter[str]            # injected faults, by kind, on every admin call
    mutation_faults: Counter[str]   # ... on calls that change something
    non_idempotent: Counter[str]    # answers to non-idempotent calls
    seconds: float

    @property
    def ok(self) -> bool:
        return not any(self.problems.values())

    def describe(self) -> list[str]:
        return [f"{self.scenario} seed {self.seed}: {name}: {problem}"
                for name in PROPERTIES for problem in self.problems[name]]


def run(scenario: str, seed: int, plan_path: Path = PLAN, reference: Path = REAL_PLAN
        ) -> RunReport:
    """Simulate ``plan_path`` on ``scenario`` under ``seed`` and check every property; what
    is non-idempotent comes from ``reference`` (the real plan), not the plan under test."""
    started = time.perf_counter()
    plan = load_plan(plan_path, ENV).plan
    routes = non_idempotent_routes(load_plan(reference, ENV).plan)
    app = create_sandbox(SCENARIOS[scenario], seed=seed, clock=VirtualClock(START))
    rec = Recorder(app)
    result = simulate(plan_path, seed=seed, env=ENV, sandbox=app, on_event=rec)
    calls = rec.calls()
    rollback = check_rollback(plan, plan_path, rec, routes)
    outcome, excuse = judge_outcome(scenario, result.phase, result.reason, rec, calls,
                                    rollback)
    problems = {
        "promotion": wrong_promotions(plan, rec, calls, CEILING[scenario]),
        "duplicate": duplicated_calls(rec, calls, routes),
        "rollback": rollback.problems,
        "outcome": outcome,
        "journal": journal_mismatch(rec),
    }
    return RunReport(
        scenario, seed, result.phase, result.reason, result.max_percentage, problems, rollback,
        excuse,
        Counter(c.fault for c in calls if c.fault),
        Counter(c.fault for c in calls if c.fault and c.method != "GET"),
        Counter(c.fault or str(c.status) for c in calls if _matches(routes, c.method, c.path)),
        time.perf_counter() - started)


def main(runs: int, plan_path: Path = PLAN) -> int:
    started = time.perf_counter()
    misses: list[str] = []
    faults: Counter[str] = Counter()
    mutations: Counter[str] = Counter()
    alerts: Counter[str] = Counter()
    shown = plan_path.relative_to(ROOT) if plan_path.is_relative_to(ROOT) else plan_path
    print(f"{shown}, {FLAKY.flaky_fraction:.0%} of admin calls answered 500/503 (not "
          "applied) or timed out (applied, never answered)")
    for scenario in SCENARIOS:
        reports = [run(scenario, seed, plan_path) for seed in range(runs)]
        for report in reports:
            misses += report.describe()
            faults.update(report.faults)
            mutations.update(report.mutation_faults)
            alerts.update(report.non_idempotent)
        count = {name: sum(bool(r.problems[name]) for r in reports) for name in PROPERTIES}
        rollbacks = [r for r in reports if r.rollback.started]
        excuses = Counter(r.excuse.split(": ")[0] for r in reports if r.excuse)
        print(f"{scenario} x{runs}: outcomes {dict(Counter(r.phase for r in reports))}, "
              f"top share {max(r.max_percentage or 0 for r in reports):g}%")
        print(f"  {'wrong promotions':34}{count['promotion']:4} (target 0)")
        print(f"  {'duplicated non-idempotent calls':34}{count['duplicate']:4} (target 0)")
        print(f"  {'rollbacks incomplete':34}{count['rollback']:4} (target 0) of "
              f"{len(rollbacks)} started: "
              f"{sum(r.rollback.at_once and not r.problems['rollback'] for r in rollbacks)} "
              f"complete at once, "
              f"{sum(r.rollback.recovered and not r.problems['rollback'] for r in rollbacks)} "
              "once the target recovered")
        print(f"  {'not ' + EXPECTED[scenario] + ', unexplained':34}{count['outcome']:4} "
              "(target 0)" + "".join(f"; {n} {why}" for why, n in excuses.items()))
        print(f"  {'live state != its journal':34}{count['journal']:4} (target 0)")
    print(f"faults injected: {dict(faults)} on admin calls, {dict(mutations)} of them on "
          f"calls that change something; non-idempotent calls answered {dict(alerts)}")
    elapsed = time.perf_counter() - started
    total = runs * len(SCENARIOS)
    print(f"{total} simulations in {elapsed:.1f} s ({elapsed / max(total, 1):.2f} s each)")
    for miss in misses:
        print(f"MISS {miss}")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200,
                  Path(sys.argv[2]).resolve() if len(sys.argv) > 2 else PLAN))

"""Property-based (hypothesis): no sequence of events reaches an illegal state.

Three levels. The table itself keeps its docstring's promises (every phase reachable, every
live phase able to end, a rollback startable again from anywhere but pending). Arbitrary
sequences of well-formed journal events, over the whole vocabulary, fold through
``apply``: each applies exactly as the table says or is refused whole, terminal phases
are left only by a new rollback, a rollback only ends rolled-back or rollback-failed, and
a snapshot taken anywhere, read back and folded on, ends where the whole journal does.

Then the real ``decide`` drives small real plans (stages with traffic, bakes, manual
gates, a stage and a background analysis, with and without rollback steps) against a
fake world the way the reconcile loop does: intent and outcome around every call (which
succeeds, fails or gets no answer), ``measured`` for every Measure (values, no data,
errors), a virtual clock for every Wait, processes killed between any two appends, and
people running pause / resume / advance / rollback with exactly the events
``rollout_cli.operations`` journals. Checked at every event: nothing the engine or a
command journals is refused by the table; traffic moves only with a traffic call's
answer, to that stage's percentage, never while rolling back and while paused only to
finish the call in flight; nothing forward starts while paused or rolling back; an
analysis verdict is acted on next; a stage completes only after its bake, a passing
analysis and an open gate (unless a person waived them); nothing succeeds after a
rollback or an unanswered rollback verdict; a rollback ends rolled-back exactly when none
of its steps failed; every Wait is for a person or for a later time; each tick ends
within a bounded number of decisions; and, afterwards, a healthy world and a cooperative
operator bring every rollout to an end. ROLLOUT_FUZZ_EXAMPLES raises the budget.
"""

from __future__ import annotations

import json
import os
import random
from collections import deque
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from rollout_cli.engine import (
    Call,
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
from rollout_cli.engine.analysis import Run
from rollout_cli.engine.phases import (
    PAUSED,
    PENDING,
    PHASES,
    ROLLBACK_FAILED,
    ROLLED_BACK,
    ROLLING_BACK,
    RUNNING,
    STAYING,
    TERMINAL,
    TRANSITIONS,
    WAITING_GATE,
    next_phase,
)
from rollout_cli.errors import IllegalTransition
from rollout_cli.plan import load_text
from rollout_cli.plan.models import RequestStep
from rollout_cli.reconcile.executor import Executor
from rollout_cli.store.atomic import encode_json

EXAMPLES = int(os.environ.get("ROLLOUT_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

EVENTS = sorted({event for _, event in TRANSITIONS} | set(STAYING))
ROLLBACK_ENDS = frozenset({ROLLED_BACK, ROLLBACK_FAILED})


def legal(phase: str, event: str) -> bool:
    try:
        next_phase(phase, event)
    except IllegalTransition:
        return False
    return True


def snapshot_of(state: RolloutState) -> dict[str, Any]:
    """The state as the snapshot file holds it: strict JSON, read back."""
    return json.loads(encode_json(state.to_json()))


# --- the table itself: what its docstring promises -------------------------------------

def _reachable(start: str) -> set[str]:
    seen, todo = {start}, deque([start])
    while todo:
        phase = todo.popleft()
        for event in EVENTS:
            if legal(phase, event) and (after := next_phase(phase, event)) not in seen:
                seen.add(after)
                todo.append(after)
    return seen


def test_every_phase_is_reachable_from_pending():
    assert _reachable(PENDING) == set(PHASES)


def test_every_phase_but_pending_can_end():
    for phase in set(PHASES) - {PENDING}:
        assert _reachable(phase) & TERMINAL, phase


def test_a_rollback_may_start_again_from_any_phase_but_pending():
    # The module's docstring: "A rollback may start again from any phase but pending:
    # running it twice is safe." An interrupted rollback (Ctrl-C at 3 a.m.) included.
    for phase in PHASES:
        assert legal(phase, "rollback-started") == (phase != PENDING), phase
        if phase != PENDING:
            assert next_phase(phase, "rollback-started") == ROLLING_BACK


def test_nothing_leads_back_to_pending_and_only_created_leaves_it():
    for phase in PHASES:
        for event in EVENTS:
            if legal(phase, event):
                assert next_phase(phase, event) != PENDING or phase == PENDING, (phase, event)
    assert {event for event in EVENTS if legal(PENDING, event)
            and next_phase(PENDING, event) != PENDING} == {"created"}


def test_recording_events_never_change_the_phase():
    for event, phases in STAYING.items():
        for phase in phases:
            if (phase, event) not in TRANSITIONS:
                assert next_phase(phase, event) == phase, (phase, event)


# --- arbitrary event sequences folded through apply -------------------------------------

def _run(action: str, passed: bool, failures: int = 0, value: float | None = 1.0,
         phase: str = "pass") -> dict[str, Any]:
    verdicts = ({"check": "ok", "phase": phase, "reason": "r", "value": value,
                 "dry_run": False},)
    return Run(1000.0, 1300.0, 1, failures, 0, 0, passed, phase, action, "m",
               verdicts).to_json()


def _intent(call_id: str, kind: str, stage: int | None, idempotent: bool) -> dict[str, Any]:
    return {"call_id": call_id, "kind": kind, "stage": stage, "step": 0,
            "line": f"POST /{call_id}", "idempotent": idempotent}


# Each event type with a few payloads of the shapes the journal holds: what matters to a
# fold is which call an outcome answers, whether it is uncertain, and so on, not the text.
PAYLOADS: dict[str, list[dict[str, Any]]] = {
    "created": [{"plan_digest": "d0"}, {}],
    "stage-started": [{"stage": 0, "name": "a", "percentage": None},
                      {"stage": 1, "name": "b", "percentage": 10},
                      {"stage": 2, "name": "c", "percentage": 50}],
    "stage-baking": [{"stage": 1, "since": 1000.0}, {"stage": 2, "since": 5000.0}],
    "stage-completed": [{"stage": 1, "name": "b"}],
    "intent": [_intent("step:0:0", "step", 0, False), _intent("step:1:0", "step", 1, True),
               _intent("traffic:1", "traffic", 1, True),
               _intent("traffic:1", "traffic", 1, False),
               _intent("rollback#1:0", "rollback", None, True),
               _intent("rollback#1:1", "rollback", None, False)],
    "outcome": [{"call_id": call_id, **answer}
                for call_id in ("step:0:0", "traffic:1", "rollback#1:0", "rollback#1:1")
                for answer in ({"ok": True, "captures": {"test_id": "t"}, "percentage": 10},
                               {"ok": False, "error": "HTTP 500"},
                               {"ok": False, "uncertain": True, "error": "timed out"})],
    "call-resolved": [{"call_id": "step:0:0", "how": "assume-applied",
                       "captures": {"test_id": "t"}},
                      {"call_id": "traffic:1", "how": "assume-applied"},
                      {"call_id": "step:0:0", "how": "resend"},
                      {"call_id": "rollback#1:1", "how": "resend"},
                      {"call_id": "rollback#1:1", "how": "assume-applied"}],
    "gate-waiting": [{"stage": 1, "name": "b"}],
    "gate-approved": [{"who": "ana"}, {"who": "ana", "forced": True},
                      {"who": "auto-approve", "auto": True}],
    "paused": [{"reason": "why"}, {"reason": "unsure", "uncertain": "step:0:0"}],
    "resumed": [{"who": "ana"}],
    "promoted-full": [{"who": "ana"}],
    "rollback-started": [{"reason": "bad", "who": "analysis"}],
    "rollback-requested": [{"reason": "again", "who": "ana"}],
    "rolled-back": [{"reason": "bad"}, {}],
    "rollback-failed": [{"reason": "incomplete"}],
    "succeeded": [{"reason": "done"}],
    "failed": [{"reason": "step failed"}],
    "plan-changed": [{"plan_digest": "d1"}],
    "note": [{"text": "hello"}],
    "analysis-started": [{"scope": "stage", "started": 1000.0, "next_due": 1000.0},
                         {"scope": "background", "started": 1000.0, "next_due": 1060.0}],
    "measured": [{"values": {"rate": 0.99, "lat": [100.0, 120.0]}, "errors": {},
                  "keep": {"rate": 3600.0, "lat": 600.0}},
                 {"values": {"rate": None}, "errors": {"rate": "HTTP 500"}, "keep": {}},
                 {"values": {"lat": 1e6}, "errors": {}}],
    "analysis": [{"scope": scope, "stage": 1, "run": run}
                 for scope in ("stage", "background")
                 for run in (_run("continue", True), _run("rollback", False, 1, 0.5, "fail"),
                             _run("pause", False, 0, None, "error"), _run("", False))],
}
PAYLOAD = {kind: st.sampled_from(payloads) for kind, payloads in PAYLOADS.items()}


def test_every_event_has_a_payload():
    assert set(PAYLOADS) == set(EVENTS)


ANY_EVENT = st.sampled_from(EVENTS)
ALLOWED_IN = {phase: st.sampled_from([event for event in EVENTS if legal(phase, event)])
              for phase in PHASES}
GAPS = st.sampled_from([0.0, 1.0, 60.0, 3600.0])


@st.composite
def journals(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Mostly events the table allows where they land, one in five any event at all."""
    phase, events, time = PENDING, [], 1000.0
    for _ in range(draw(st.integers(1, 30))):
        kind = draw(ALLOWED_IN[phase] if draw(st.integers(0, 4)) else ANY_EVENT)
        time += draw(GAPS)
        events.append({"type": kind, "time": time, **draw(PAYLOAD[kind])})
        if legal(phase, kind):
            phase = next_phase(phase, kind)
    return events


@FUZZ
@given(journals(), st.integers(0, 30))
def test_every_event_applies_as_the_table_says_or_is_refused_whole(events, cut):
    """And a snapshot taken after any event, read back and folded on with the rest of the
    journal, ends where the whole journal does: `load_state` after a crash."""
    state = RolloutState(id="r", plan="p")
    restored = None
    for index, event in enumerate(events):
        if index == cut:
            restored = RolloutState.from_json(snapshot_of(state))
            assert restored == state
        before, saved = state, state.to_json()
        event = {**event, "seq": state.seq + 1}
        try:
            state = apply(state, from_json(event))
        except IllegalTransition as refused:
            assert not legal(before.phase, event["type"])
            assert (refused.phase, refused.event) == (before.phase, event["type"])
            # Nothing half-applied.
            assert before.to_json() == saved
            continue    # and the reconciler journals nothing the table refuses
        # Applying an event leaves the state it started from as it was.
        assert before.to_json() == saved
        if restored is not None:
            restored = apply(restored, from_json(event))
        # Legal events never raise anything else, whatever the state they meet.
        assert legal(before.phase, event["type"])
        assert state.phase in PHASES
        assert state.phase == next_phase(before.phase, event["type"])
        assert (state.seq, state.updated, state.last_event) == (
            event["seq"], event["time"], event["type"])
        if state.phase != before.phase:
            if before.phase in TERMINAL:
                assert event["type"] == "rollback-started"
            if before.phase == ROLLING_BACK:
                assert state.phase in ROLLBACK_ENDS
            assert state.phase != PENDING
        if event["type"] == "rollback-started":
            # A new round starts clean: nothing of an interrupted call is carried over.
            assert (state.pending, state.uncertain, state.rollback_step,
                    state.rollback_failures) == (None, None, 0, ())
    if restored is not None:
        assert snapshot_of(restored) == snapshot_of(state)


# --- the real engine against a fake world -----------------------------------------------

PLAN = """\
version: 1
name: fuzzed
target: {base_url: "http://127.0.0.1:9"}
traffic: {request: POST /weights, json: {modern: "{{ percentage }}"}TRAFFIC}
metrics:
  rate: {http: {get: /results}, select: rate}
  lat: {http: {get: /results}, select: lat}
  base: {http: {get: /results}, select: base}
checks:
  ok: {metric: rate, pass: ">= 0.95", fail: "< 0.90"}
  slow: {metric: lat, baseline: base, fail: "> +20%"}
  warm: {metric: rate, window: 30m, min_samples: 2, pass: ">= 0.95", fail: "< 0.90"}
analysis: {interval: 5m, checks: [ok, slow], inconclusive_limit: 1, consecutive_error_limit: 1,
           on_failure: ON_FAILURE}
background: {interval: 10m, initial_delay: 1m, checks: [warm], failure_limit: 1}
stages:
  - name: prepare
    steps:
      - request: POST /tests
        capture: {test_id: id}
      - request: GET /tests/{{ test_id }}
  - {name: canary, percentage: 10, bake: 20m, gate: manual}
  - {name: half, percentage: 50, bake: 10m..30m, analysis: {interval: 2m, failure_limit: 1}}
  - name: full
    percentage: 100
    bake: 10m
    gate: manual
    steps: [{request: POST /flags/modern, json: {on: true}}]
  - name: cleanup
    steps: [{request: "DELETE /tests/{{ test_id }}"}]
ROLLBACK"""
ROLLBACK = """\
rollback:
  - {request: PUT /weights, json: {modern: 0}}
  - request: POST /alerts
"""


def _variant(traffic_idempotent: bool, on_failure: str, rollback: bool) -> Any:
    text = (PLAN.replace("TRAFFIC", ", idempotent: true" if traffic_idempotent else "")
            .replace("ON_FAILURE", on_failure).replace("ROLLBACK", ROLLBACK if rollback else ""))
    return load_text(text, "fuzzed.yaml", {})


VARIANTS = [_variant(idempotent, on_failure, rollback) for idempotent in (True, False)
            for on_failure in ("rollback", "pause") for rollback in (True, False)]
MAX_DECISIONS = 200     # at one instant: more than a whole plan's worth of events
DRAIN_ROUNDS = 400

# How a call ends, as the executor reports it (answered and fine, answered and wrong, no
# answer, no answer though it may have reached the target), and what metrics read; each
# for a healthy, a flaky and a broken world. The first option is always the healthy one.
OUTCOMES = (["ok"], ["ok"] * 15 + ["failed", "no-answer"] + ["no-answer-sent"] * 3,
            ["ok"] * 3 + ["failed", "no-answer"] + ["no-answer-sent"] * 3)
RATES = ([0.99], [0.99] * 6 + [0.97, 0.93, 0.85, None, "HTTP 500"],
         [0.99, 0.93, 0.85, None, "HTTP 500"])
LATENCIES = ([100.0], [100.0] * 6 + [110.0, 130.0, [95.0, 105.0], None, "timed out"],
             [100.0, 130.0, [95.0, 105.0], None, "timed out"])
# What an operator may do and the CLI would refuse with an IllegalTransition rather than
# a UsageError: `advance --force` / `--full` during a rollback.
REFUSED_BY_TABLE = {(ROLLING_BACK, "gate-approved"), (ROLLING_BACK, "promoted-full")}
PERSON = "ana@host"
# Where a process may be killed: nowhere, after its n-th append of a tick, or in any of
# the windows between two appends the engine means to make together (see in_window).
CRASHES = [None, None, 1, 3, 8, "windows", "windows", "windows"]
KILLED = [False, False, True]
# "carry on": what a person does to get a rollout going again (resolve, resume, approve).
COMMANDS = ["pause", "resume", "resume assume-applied", "resume resend", "advance",
            "advance force", "advance full", "rollback", "carry on", "carry on"]
# After a kill: nobody (yet), a follower in another terminal ticks on, or a person acts.
AFTER_A_CRASH = [None, "tick", "pause, tick", "pause, tick", "resume",
                 "resume assume-applied", "resume resend", "carry on", "advance",
                 "advance force", "advance full", "rollback", "rollback"]
SEEDS = st.integers(0, 2**32 - 1)


def drawing(data: st.DataObject) -> Any:
    """How the world picks an outcome, a reading or a crash: a random generator seeded by
    hypothesis (thousands of cheap choices per example; hypothesis shrinks the rules)."""
    return random.Random(data.draw(SEEDS)).choice


class RolloutWorld(RuleBasedStateMachine):
    """One rollout: the real decide() and apply(), a fake target, metrics and operators."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1_000_000.0
        self.state = RolloutState(id="r-fuzz", plan="fuzzed")
        self.acting: str | None = None          # an analysis action not yet acted on
        self.unanswered_rollback_verdict = False
        self.rolled_back_once = False
        self.pending_at_pause: str | None = None
        self.opened: set[int] = set()           # stages whose gate was approved
        self.waived: set[int] = set()           # ... by a person
        self.skipped: set[int] = set()          # ... forced, skipping the bake
        self.full = False                       # promoted all the way
        self.rollback_failed_steps = 0
        self.last_wait: Wait | None = None
        self.trace: list[tuple[float, str, dict[str, Any]]] = []

    def recent(self, count: int = 25) -> str:
        return "\n".join(f"t={now - 1_000_000:g} {phase}: {event}"
                         for now, phase, event in self.trace[-count:])

    # The world -------------------------------------------------------------------------

    @initialize(variant=st.sampled_from(range(len(VARIANTS))), auto_approve=st.booleans(),
                flaky=st.integers(0, 2), noisy=st.integers(0, 2), started=st.integers(0, 40),
                crash=st.sampled_from(CRASHES), data=st.data())
    def create(self, variant: int, auto_approve: bool, flaky: int = 0, noisy: int = 0,
               started: int = 0, crash: str | int | None = None,
               data: st.DataObject | None = None) -> None:
        """`rollout start --follow`, running ``started`` ticks before anything else."""
        self.outcomes = OUTCOMES[flaky]
        self.rates, self.latencies = RATES[noisy], LATENCIES[noisy]
        self.loaded = VARIANTS[variant]
        self.plan = self.loaded.plan
        self.executor = Executor(self.loaded, None)  # type: ignore[arg-type]  # prepare only
        self.policy = Policy(auto_approve)
        self.ceiling = [max([0.0, *(s.percentage for s in self.plan.stages[:i + 1]
                                    if s.percentage is not None)])
                        for i in range(len(self.plan.stages))]
        self.record({"type": "created", "plan": self.plan.name, "plan_digest": "d0",
                     "who": PERSON}, person=True)
        if data is not None:
            self.run_follow(drawing(data), started, crash)

    def record(self, event: dict[str, Any], person: bool = False) -> None:
        """Reconciler.record: journal one event and fold it, checking every step."""
        before = self.state
        stamped = {**event, "seq": before.seq + 1, "time": self.now}
        self.trace.append((self.now, before.phase, event))
        try:
            after = apply(before, from_json(stamped))
        except IllegalTransition as refused:
            who = "an operator" if person else "the engine"
            raise AssertionError(f"{who} journaled an event the table refuses: {refused}\n"
                                 + self.recent()) from None
        self.check_step(before, after, stamped, person)
        self.state = after

    def check_step(self, before: RolloutState, after: RolloutState, event: dict[str, Any],
                   person: bool) -> None:
        kind = event["type"]
        assert after.phase in PHASES and after.phase != PENDING
        assert after.phase == next_phase(before.phase, kind)
        if after.phase != before.phase:
            if before.phase in TERMINAL:
                assert kind == "rollback-started"
            if before.phase == ROLLING_BACK:
                assert after.phase in ROLLBACK_ENDS
            if after.phase == PAUSED:
                self.pending_at_pause = after.pending.call_id if after.pending else None
        if kind == "gate-waiting":
            assert not self.policy.auto_approve, "auto-approve never waits at a gate"
        # Nothing forward is started while paused or rolling back: a paused rollout only
        # finishes the call that was in flight when it was paused.
        if kind == "intent":
            if before.phase == ROLLING_BACK:
                assert event["kind"] == "rollback"
            elif before.phase == PAUSED:
                assert before.pending is not None and before.pending.call_id == \
                    event["call_id"] == self.pending_at_pause
            else:
                assert before.phase == RUNNING and event["kind"] != "rollback"
        # Traffic: only a traffic call's answer (or a person vouching for it) moves it, to
        # that stage's percentage, never beyond the stage the rollout is at, and while
        # paused only by the answer to the call that was in flight when it was paused.
        if after.percentage != before.percentage:
            assert before.phase != ROLLING_BACK
            assert kind in ("outcome", "call-resolved"), kind
            call = before.pending if kind == "outcome" else before.uncertain
            assert call is not None and call.kind == "traffic" and call.stage is not None
            stage_percentage = self.plan.stages[call.stage].percentage
            if kind == "outcome":
                assert after.percentage == stage_percentage
                if before.phase == PAUSED:
                    assert call.call_id == self.pending_at_pause
            else:
                # `resume --assume-applied` vouches for the stage's percentage.
                assert event["how"] == "assume-applied"
                assert after.percentage == stage_percentage
        if after.percentage is not None:
            assert after.percentage <= self.ceiling[min(after.stage, len(self.ceiling) - 1)]
        # An analysis that asks for an action gets it next, unless a person steps in.
        if person:
            self.acting = None
        elif kind == "analysis":
            action = event["run"]["action"]
            self.acting = action if action in ("rollback", "pause") else None
            if action == "rollback":
                self.unanswered_rollback_verdict = True
        if person and kind in ("resumed", "gate-approved", "promoted-full"):
            self.unanswered_rollback_verdict = False    # a person chose to carry on
        # A rollback ends rolled-back exactly when none of its steps answered with a failure
        # (one whose answer is unknown is noted, not failed).
        if kind == "rollback-started":
            self.rolled_back_once = True
            self.rollback_failed_steps = 0
        if kind == "outcome" and before.pending is not None and \
                before.pending.kind == "rollback" and not event["ok"] and \
                not event.get("uncertain"):
            self.rollback_failed_steps += 1
        if kind in ROLLBACK_ENDS:
            assert (kind == ROLLBACK_FAILED) == (self.rollback_failed_steps > 0), kind
            assert after.rollback_step == len(self.plan.rollback)
        if kind == "succeeded":
            assert before.stage == len(self.plan.stages), "succeeded before the last stage"
            assert not self.rolled_back_once, "succeeded after a rollback"
            assert not self.unanswered_rollback_verdict, \
                "succeeded after an analysis said roll back, and nobody approved anything"
        # A stage completes when its bake's minimum has passed, its last analysis round
        # passed and its gate is open, unless a person said otherwise (README).
        if kind == "gate-approved":
            self.opened.add(before.stage)
            if person:
                self.waived.add(before.stage)
            if event.get("forced"):
                self.skipped.add(before.stage)
        if kind == "promoted-full":
            self.full = True
        if kind == "stage-completed" and not self.full:
            stage = self.plan.stages[before.stage]
            if stage.gate == "manual":
                assert before.stage in self.opened, "a manual gate passed unopened"
            if stage.bake and before.stage not in self.skipped:
                assert before.baking_since is not None
                assert self.now >= before.baking_since + stage.bake.min, "bake cut short"
                assert before.baked_at(self.now) + 1e-6 >= stage.bake.min, \
                    "bake counted time it did not watch"
            if self.plan.analysis_for(stage) and before.stage not in self.waived:
                run = before.analyses.get("stage")
                assert run is not None and run.passed, "completed without a passing analysis"

    def check_decision(self, decision: Any) -> None:
        state = self.state
        if isinstance(decision, Finished):
            assert state.phase in TERMINAL and decision.phase == state.phase
            return
        assert state.phase not in TERMINAL
        if self.acting is not None:
            wanted = {"rollback": "rollback-started", "pause": "paused"}[self.acting]
            assert isinstance(decision, Record) and wanted == decision.event.TYPE, \
                f"analysis said {self.acting}, the engine did {decision}"
            self.acting = None
        if isinstance(decision, Wait):
            if decision.on_person:
                assert state.phase in (PAUSED, WAITING_GATE), decision
            else:
                assert state.phase == RUNNING and decision.until > self.now, decision
        elif isinstance(decision, Record):
            assert legal(state.phase, decision.event.TYPE), (state.phase, decision)
        elif isinstance(decision, Measure):
            assert decision.metrics and state.phase in (RUNNING, WAITING_GATE)
        else:
            assert isinstance(decision, Call)
            if state.phase == ROLLING_BACK:
                assert decision.kind == "rollback"
            elif state.phase == PAUSED:
                assert state.pending is not None and state.pending.call_id == decision.call_id
            else:
                assert state.phase == RUNNING

    def outcome(self, call: Call, how: str) -> dict[str, Any]:
        """Executor.perform's event for a call that ended ``how``."""
        prepared = self.executor.prepare(call, self.state)
        event: dict[str, Any] = {"type": "outcome", "call_id": call.call_id}
        if prepared.error is not None:
            return {**event, "ok": False, "error": prepared.error}
        base = {"attempts": 1, "elapsed": 0.01}
        if how == "failed":
            return {**event, **base, "status": 500, "ok": False,
                    "error": "status 500, expected 2xx"}
        if how.startswith("no-answer"):
            return {**event, **base, "status": None, "ok": False,
                    "uncertain": not prepared.idempotent and how == "no-answer-sent",
                    "error": "timed out"}
        step = self.executor.step_of(call)
        captures = ({name: f"{name}-{self.state.seq}" for name in step.capture}
                    if isinstance(step, RequestStep) else {})
        result = {**event, **base, "status": 200, "ok": True, "captures": captures}
        if call.kind == "traffic":
            assert call.stage is not None
            result["percentage"] = self.plan.stages[call.stage].percentage
        return result

    def measured(self, measure: Measure, draw: Any) -> dict[str, Any]:
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for metric in measure.metrics:
            value = draw(self.rates if metric == "rate" else self.latencies)
            values[metric] = None if isinstance(value, str) else value
            if isinstance(value, str):
                errors[metric] = value
        return {"type": "measured", "values": values, "errors": errors, "keep": measure.keep}

    def tick(self, draw: Any, crash: str | int | None = None) -> Any:
        """Reconciler.tick: act on decisions until a Wait or Finished; None if the process
        was killed: after its ``crash``-th append, or with ``crash="windows"`` maybe in any
        window between two appends the engine means to make together."""
        appended = 0

        def killed() -> bool:
            nonlocal appended
            appended += 1
            if crash != "windows":
                return appended == crash
            return self.in_window() and draw(KILLED)

        for _ in range(MAX_DECISIONS):
            decision = decide(self.plan, self.state, self.now, self.policy)
            self.check_decision(decision)
            if isinstance(decision, Wait | Finished):
                self.last_wait = decision if isinstance(decision, Wait) else None
                return decision
            if isinstance(decision, Record):
                self.record(decision.event.to_json())
            elif isinstance(decision, Measure):
                self.record(self.measured(decision, draw))
            else:
                prepared = self.executor.prepare(decision, self.state)
                self.record({"type": "intent", "call_id": decision.call_id,
                             "kind": decision.kind, "stage": decision.stage,
                             "step": decision.step, "line": prepared.line,
                             "idempotent": prepared.idempotent})
                if killed():
                    return None
                self.record(self.outcome(decision, draw(self.outcomes)))
            if killed():
                return None
        raise AssertionError(f"no Wait or Finished after {MAX_DECISIONS} decisions at one "
                             "instant\n" + self.recent())

    def in_window(self) -> bool:
        state = self.state
        return (state.pending is not None                       # between intent and outcome
                or state.phase == ROLLING_BACK                  # a rollback under way
                or (state.phase != PAUSED and (state.uncertain is not None   # then a pause
                                               or state.step_failure is not None))
                or any(run.action in ("rollback", "pause")      # a verdict, then its action
                       for run in state.analyses.values()))

    def killed_then(self, draw: Any) -> None:
        """The process is gone; maybe a person steps in before anything else runs."""
        for name in (draw(AFTER_A_CRASH) or "").split(", "):
            if name == "tick":
                self.tick(draw, "windows")
            elif name:
                self.command(name, draw)

    def operate(self, events: list[dict[str, Any]], draw: Any, run: bool = True) -> None:
        """operations._act: the operator's events under the lock, then a tick."""
        for event in events:
            if not legal(self.state.phase, event["type"]):
                # Reconciler.record refuses before writing; the command fails here.
                assert (self.state.phase, event["type"]) in REFUSED_BY_TABLE, \
                    f"the CLI would fail: {event} in {self.state.phase}"
                return
            self.record(event, person=True)
        if run and self.state.phase not in TERMINAL:
            self.tick(draw, "windows")      # and that process may be killed too

    # The people: operations.pause / resume / advance / rollback -----------------------

    def command(self, name: str, draw: Any) -> None:
        """One CLI command, as operations.py journals it; a refused one journals nothing."""
        state = self.state
        if name == "carry on":
            name = ("resume assume-applied" if state.uncertain is not None else
                    "advance" if state.phase == WAITING_GATE else "resume")
        verb, _, flag = name.partition(" ")
        if verb == "pause":
            if state.phase in (PAUSED, ROLLING_BACK) or state.phase in TERMINAL:
                return                      # nothing to do, or a UsageError
            self.operate([{"type": "paused", "reason": f"paused by {PERSON}",
                           "who": PERSON}], draw, run=False)
        elif verb == "resume":
            events = self.resume_events(flag or None)
            if events is not None:
                self.operate(events, draw)
        elif verb == "advance":
            events = self.advance_events(flag or None)
            if events is not None:
                self.operate(events, draw)
        else:
            assert verb == "rollback"
            self.operate([{"type": "rollback-started",
                           "reason": f"rollback requested by {PERSON}", "who": PERSON}], draw)

    def resume_events(self, how: str | None) -> list[dict[str, Any]] | None:
        state = self.state
        found: list[dict[str, Any]] = []
        if state.uncertain is not None:
            if how is None:
                return None                 # a UsageError naming the call
            resolved: dict[str, Any] = {"type": "call-resolved",
                                        "call_id": state.uncertain.call_id,
                                        "how": how, "who": PERSON}
            if how == "assume-applied":
                call = state.uncertain
                step = (self.plan.traffic if call.kind == "traffic" else
                        self.plan.stages[call.stage].steps[call.step]
                        if call.stage is not None else None)
                resolved["captures"] = {name: f"{name}-by-hand"
                                        for name in sorted(getattr(step, "capture", {}) or {})}
                if call.kind == "traffic" and call.stage is not None:
                    resolved["percentage"] = self.plan.stages[call.stage].percentage
            found.append(resolved)
        if state.phase == PAUSED:
            found.append({"type": "resumed", "who": PERSON})
        return found

    def advance_events(self, how: str | None) -> list[dict[str, Any]] | None:
        state = self.state
        if state.phase in TERMINAL or state.uncertain is not None:
            return None                     # UsageError
        base = {"who": PERSON, "reason": "fuzz"}
        opened = [{"type": "gate-approved", "stage": state.stage, **base}]
        if how == "full":
            return [*(opened if state.phase in (WAITING_GATE, PAUSED) else []),
                    {"type": "promoted-full", **base}]
        if state.phase in (WAITING_GATE, PAUSED):
            return opened
        if how == "force":
            return [{"type": "gate-approved", "stage": state.stage, "forced": True, **base}]
        return None                         # UsageError: the bake is not done

    # Rules: the reconcile loop, time, the people -------------------------------------

    @rule(data=st.data(), crash=st.sampled_from(CRASHES))
    def reconcile(self, data: st.DataObject, crash: str | int | None) -> None:
        if self.tick(drawing(data), crash) is None:
            self.killed_then(drawing(data))

    @rule(data=st.data(), rounds=st.integers(1, 12), crash=st.sampled_from(CRASHES))
    def follow(self, data: st.DataObject, rounds: int, crash: str | int | None) -> None:
        self.run_follow(drawing(data), rounds, crash)

    def run_follow(self, draw: Any, rounds: int, crash: str | int | None = None) -> None:
        """`run --follow`: tick, sleep until the Wait is over, tick again; killed in the
        first ``crash`` window that opens, if any."""
        for _ in range(rounds):
            decision = self.tick(draw, crash)
            if decision is None:
                self.killed_then(draw)
            if not isinstance(decision, Wait) or decision.until is None:
                return
            self.now = decision.until

    @rule(delta=st.sampled_from(["until", "until", 1.0, 59.0, 600.0, 7200.0]))
    def elapse(self, delta: str | float) -> None:
        if delta == "until":
            wait = self.last_wait
            if wait is None or wait.until is None:
                return
            self.now = max(self.now, wait.until)
        else:
            self.now += float(delta)

    @rule(data=st.data(), name=st.sampled_from(COMMANDS))
    def operator(self, data: st.DataObject, name: str) -> None:
        self.command(name, drawing(data))

    @rule()
    def restart(self) -> None:
        """A new process: the state from its snapshot (the journal's tail is empty here)."""
        restored = RolloutState.from_json(snapshot_of(self.state))
        assert restored == self.state
        self.state = restored

    def teardown(self) -> None:
        """Whatever happened, a healthy world and a cooperative operator end it."""
        if not hasattr(self, "plan"):
            return
        self.restart()

        def draw(options: list[Any]) -> Any:
            return options[0]

        for _ in range(DRAIN_ROUNDS):
            decision = self.tick(draw)
            if isinstance(decision, Finished):
                return
            assert isinstance(decision, Wait)
            if decision.until is not None:
                self.now = decision.until
            elif self.state.uncertain is not None:
                self.command("resume assume-applied", draw)
            else:
                # At a gate, or paused (an exhausted bake, a person): advance opens both.
                self.command("advance", draw)
        raise AssertionError(f"not finished after {DRAIN_ROUNDS} rounds in a healthy world\n"
                             + self.recent())


TestRolloutWorld = RolloutWorld.TestCase
TestRolloutWorld.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=15, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much])


@pytest.mark.parametrize("variant", range(len(VARIANTS)))
def test_every_plan_variant_finishes_in_a_healthy_world(variant):
    """The fake world itself: left alone and healthy, each variant runs to the end."""
    world = RolloutWorld()
    world.create(variant, auto_approve=True)
    world.teardown()
    assert world.state.phase == "succeeded", world.recent()


# --- what the fuzzer found, pinned --------------------------------------------------------

def _healthy(options: list[Any]) -> Any:
    return options[0]


def test_an_uncertain_call_can_be_resolved_before_its_pause_is_journaled():
    """Killed between a non-idempotent call's unanswered outcome and the pause that names
    it: `rollout resume --assume-applied` must still work (it journals call-resolved while
    the rollout is running)."""
    world = RolloutWorld()
    world.create(0, auto_approve=False)
    assert world.tick(lambda options: "no-answer-sent" if options is world.outcomes
                      else options[0], crash=3) is None    # stage-started, intent, outcome
    assert (world.state.phase, world.state.uncertain.call_id) == (RUNNING, "step:0:0")

    world.command("resume assume-applied", _healthy)

    after = [(phase, event) for _, phase, event in world.trace[4:7]]
    assert after[0] == (RUNNING, {"type": "call-resolved", "call_id": "step:0:0",
                                  "how": "assume-applied", "who": PERSON,
                                  "captures": {"test_id": "test_id-by-hand"}})
    assert after[1][1]["call_id"] == "step:0:1"     # on to the next step, no pause
    assert world.state.captures["test_id"] == "test_id-by-hand"


def test_a_person_pauses_while_an_unsafe_call_is_in_flight():
    """Killed between a non-idempotent call's intent and its outcome, then paused by a
    person: a follower waits for the person instead of pausing the paused rollout."""
    world = RolloutWorld()
    world.create(0, auto_approve=False)
    assert world.tick(_healthy, crash=2) is None            # stage-started, intent
    world.command("pause", _healthy)

    assert world.tick(_healthy) == Wait(None, f"paused by {PERSON}")
    world.command("resume", _healthy)                        # now it names the call
    assert world.state.phase == PAUSED and world.state.uncertain.call_id == "step:0:0"


def test_an_interrupted_rollback_can_be_started_again():
    """Ctrl-C (or worse) during a rollback, then `rollout rollback` again: a new round."""
    world = RolloutWorld()
    world.create(0, auto_approve=False)
    world.record({"type": "rollback-started", "reason": "3 a.m.", "who": PERSON}, person=True)
    assert world.tick(_healthy, crash=1) is None             # killed mid-rollback
    assert world.state.phase == ROLLING_BACK and world.state.pending is not None

    world.command("rollback", _healthy)

    assert world.state.phase == ROLLED_BACK and world.state.rollback_round == 2

"""A reconcile loop without I/O around ``decide``, for the engine's tests.

Calls succeed unless their id is in ``failing``; a traffic call leaves the stage's
percentage (or ``traffic_at``); a measurement answers what ``answers(now)`` gives for each
metric (``{"error": text}`` fails them all) and may take ``measure_takes`` seconds. Time
moves only when the world waits (``run``) or a measurement takes time; every journaled
event is kept in ``events`` as the journal would hold it, and ``log`` names each decision
(an event's type, a call's id) in order.
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


@dataclass
class World:
    plan: Any
    answers: Callable[[float], dict[str, Any]] = lambda now: {}
    measure_takes: float = 0.0
    policy: Policy = field(default_factory=Policy)
    now: float = 1000.0
    state: RolloutState = field(default_factory=lambda: RolloutState(id="r", plan="p"))
    failing: set[str] = field(default_factory=set)
    traffic_at: float | None = None   # what traffic calls leave it at; default: the stage's
    events: list[dict[str, Any]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    measures: list[float] = field(default_factory=list)   # when each measurement began

    def record(self, event: Event | dict[str, Any]) -> None:
        """Journal ``event`` (typed, or as the journal spells it) at ``now``."""
        typed = from_json(event) if isinstance(event, dict) else event
        stored = typed.stamped(self.state.seq + 1, self.now)
        self.state = apply(self.state, stored)
        self.events.append(stored.to_record())

    def step(self) -> Any:
        """Ask the engine once and do what it says; the decision."""
        decision = decide(self.plan, self.state, self.now, self.policy)
        if isinstance(decision, Record):
            self.log.append(decision.event.TYPE)
            self.record(decision.event)
        elif isinstance(decision, Call):
            self.log.append(decision.call_id)
            self._call(decision)
        elif isinstance(decision, Measure):
            self.measures.append(self.now)
            answers = self.answers(self.now)
            self.now += self.measure_takes
            errors = {m: answers["error"] for m in decision.metrics if "error" in answers}
            self.record({"type": "measured", "keep": decision.keep, "errors": errors,
                         "values": {m: answers.get(m) for m in decision.metrics}})
        return decision

    def _call(self, call: Call) -> None:
        self.record({"type": "intent", "call_id": call.call_id, "kind": call.kind,
                     "stage": call.stage, "step": call.step, "line": call.call_id,
                     "idempotent": call.kind != "step" or call.step != 0})
        ok = call.call_id not in self.failing
        percentage = self.traffic_at
        if percentage is None and call.kind == "traffic" and call.stage is not None:
            percentage = self.plan.stages[call.stage].percentage
        self.record({"type": "outcome", "call_id": call.call_id, "ok": ok,
                     "error": None if ok else "boom", "captures": {"test_id": "t-1"},
                     "percentage": percentage})

    def until_wait(self, limit: int = 200) -> Wait | Finished:
        """Step, without moving time, until the engine waits or the rollout ends."""
        for _ in range(limit):
            decision = self.step()
            if isinstance(decision, Wait | Finished):
                return decision
        raise AssertionError("no wait within the limit")

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
        """The journaled events of a type, with these fields."""
        return [e for e in self.events if e["type"] == kind
                and all(e.get(k) == v for k, v in match.items())]

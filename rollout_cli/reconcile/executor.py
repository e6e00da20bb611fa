"""Perform one engine Call through the drivers and describe its outcome as an event."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from rollout_cli.drivers.expect import body_excerpt, capture, check_condition, check_status
from rollout_cli.drivers.http import HttpDriver, HttpOutcome
from rollout_cli.drivers.metrics import MetricFetcher
from rollout_cli.drivers.request import policy_of, request_of
from rollout_cli.engine import Call, Measure, RolloutState
from rollout_cli.engine.events import Measured, Outcome
from rollout_cli.plan.calls import (
    ResolvedCommand,
    ResolvedRequest,
    resolve_command,
    resolve_request,
    variables_for,
)
from rollout_cli.plan.loader import LoadedPlan
from rollout_cli.plan.models import RequestStep, RunStep
from rollout_cli.plan.templates import MissingVariable

if TYPE_CHECKING:
    from rollout_cli.drivers.command import CommandOutcome

ROLLBACK_MIN_ATTEMPTS = 8
ROLLBACK_DEADLINE = 120.0


@dataclass(frozen=True)
class Prepared:
    """A call with its templates filled: what to journal as intent, and what to send."""

    line: str
    idempotent: bool
    action: ResolvedRequest | ResolvedCommand | None
    error: str | None = None


class Executor:
    def __init__(self, loaded: LoadedPlan, http: HttpDriver, rollback_deadline: float =
                 ROLLBACK_DEADLINE, simulate_commands: bool = False):
        self.simulate_commands = simulate_commands
        self.loaded = loaded
        self.plan = loaded.plan
        self.http = http
        self.redactor = loaded.redactor
        self.rollback_deadline = rollback_deadline
        self.metrics = MetricFetcher(self.plan, http)

    def measure(self, measure: Measure, state: RolloutState, now: float) -> Measured:
        """The `measured` event for one tick's metrics."""
        stage = self.plan.stages[min(measure.stage, len(self.plan.stages) - 1)]
        variables = variables_for(self.plan, stage, state.id, state.captures)
        values, errors = self.metrics.fetch(measure.metrics, variables, now)
        return Measured(values=values, errors=errors, keep=measure.keep)

    def step_of(self, call: Call) -> RequestStep | RunStep:
        if call.kind == "rollback":
            return self.plan.rollback[call.step]
        if call.kind == "traffic":
            assert self.plan.traffic is not None
            return self.plan.traffic
        assert call.stage is not None
        return self.plan.stages[call.stage].steps[call.step]

    def prepare(self, call: Call, state: RolloutState) -> Prepared:
        step = self.step_of(call)
        stage_index = call.stage if call.stage is not None else min(
            state.stage, len(self.plan.stages) - 1)
        stage = self.plan.stages[stage_index]
        variables = variables_for(self.plan, stage, state.id, state.captures)
        idempotent = step.is_idempotent if isinstance(step, RequestStep) else step.idempotent
        try:
            if isinstance(step, RequestStep):
                request = resolve_request(self.plan, step, variables)
                line = self.redactor.text(f"{request.method} {request.url}")
                return Prepared(line, idempotent, request)
            command = resolve_command(step, variables)
            return Prepared(self.redactor.text(str(command)), idempotent, command)
        except MissingVariable as missing:
            return Prepared(step.label, idempotent, None,
                            f"template variable {missing.name!r} has no value yet")

    def perform(self, call: Call, prepared: Prepared) -> Outcome:
        """The outcome event of performing a prepared call."""
        if prepared.error is not None:
            return Outcome(call_id=call.call_id, ok=False, error=prepared.error)
        if isinstance(prepared.action, ResolvedRequest):
            result = self._request(call, prepared.action)
        else:
            assert isinstance(prepared.action, ResolvedCommand)
            result = self._command(prepared.action)
        if call.kind == "traffic" and result.get("ok"):
            assert call.stage is not None
            result["percentage"] = self.plan.stages[call.stage].percentage
        return Outcome(call_id=call.call_id, **result)

    def _request(self, call: Call, resolved: ResolvedRequest) -> dict[str, Any]:
        policy = policy_of(resolved.retry)
        if call.kind == "rollback":
            # At 3 a.m. the rollback keeps trying for longer than a forward step would.
            policy = replace(policy, attempts=max(policy.attempts, ROLLBACK_MIN_ATTEMPTS),
                             deadline=policy.deadline or self.rollback_deadline)
        outcome = self.http.send(request_of(resolved), policy)
        return self._judge(call, outcome, resolved.idempotent)

    def _judge(self, call: Call, outcome: HttpOutcome, idempotent: bool) -> dict[str, Any]:
        result: dict[str, Any] = {"status": outcome.status, "attempts": outcome.attempts,
                                  "elapsed": round(outcome.elapsed, 4)}
        if outcome.status is None:
            uncertain = not idempotent and outcome.may_have_reached_server
            return {**result, "ok": False, "uncertain": uncertain,
                    "error": self.redactor.text(outcome.error or "no response")}
        step = self.step_of(call)
        assert isinstance(step, RequestStep)
        expect = step.expect
        problem = check_status(outcome.status, list(expect.status) if expect and expect.status
                               else None)
        if problem is None and expect and expect.condition:
            problem = check_condition(outcome.json, expect.condition)
        captured: dict[str, Any] = {}
        if problem is None and step.capture:
            captured, errors = capture(outcome.json, dict(step.capture))
            problem = "; ".join(errors) or None
        if problem is not None:
            body = body_excerpt(outcome.json, outcome.text, self.redactor)
            if body:   # what the target said, so the failure explains itself
                problem += f"; the answer was: {body}"
            return {**result, "ok": False, "error": self.redactor.text(problem)}
        return {**result, "ok": True, "captures": self.redactor.data(captured)}

    def _command(self, resolved: ResolvedCommand) -> dict[str, Any]:
        if self.simulate_commands:
            return {"ok": True, "exit_code": 0, "elapsed": 0.0, "output": "(not run: simulation)"}
        # Here, not at the top: a simulation never runs a command.
        from rollout_cli.drivers.command import CommandSpec, run_command

        spec = CommandSpec(list(resolved.argv) if resolved.argv is not None else None,
                           resolved.command, resolved.shell, resolved.timeout,
                           resolved.expect_exit, resolved.cwd, resolved.env)
        outcome: CommandOutcome = run_command(spec, self.redactor)
        result: dict[str, Any] = {"exit_code": outcome.exit_code,
                                  "elapsed": round(outcome.elapsed, 4),
                                  "output": (outcome.stdout or outcome.stderr)[-500:]}
        if outcome.ok:
            return {**result, "ok": True}
        error = outcome.error or (f"timed out after {resolved.timeout:g}s" if outcome.timed_out
                                  else f"exit code {outcome.exit_code}, expected "
                                       f"{resolved.expect_exit}")
        return {**result, "ok": False, "error": self.redactor.text(error)}

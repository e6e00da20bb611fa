"""Whatever `validate` accepts, the drivers can send.

For every request step (stage steps, the traffic request at each percentage, rollback
steps), every metric and every notify entry, this builds the ``HttpRequest`` and
``RetryPolicy`` that the executor, the metric fetcher and the notifier would build, with
stand-ins for captured values (unknown before a run), and checks what httpx only checks
when it sends. Each ValueError becomes a problem at the plan key it came from. A
`target.verify` CA bundle is loaded as the driver loads it. No httpx is imported here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rollout_cli.drivers import request as wire
from rollout_cli.errors import Problem
from rollout_cli.plan.calls import resolve_request, stand_in_variables
from rollout_cli.plan.models import Metric, Plan, RequestStep
from rollout_cli.plan.templates import MissingVariable
from rollout_cli.plan.yaml_source import Path, Positions

_WEBHOOK_HINT = "a webhook is a secret, so it is not shown; check the variable that gives it"
_CA_HINT = "give the path of a PEM file of CA certificates, true for the system's, or false"


@dataclass
class _Trial:
    positions: Positions
    problems: list[Problem] = field(default_factory=list)

    def refuse(self, path: Path, message: str, hint: str | None = None, *,
               key: bool = False) -> None:
        where = ".".join(str(p) for p in path)
        self.problems.append(self.positions.problem(path, f"{where}: {message}", hint,
                                                    key=key))

    def attempt(self, path: Path, build: Callable[[], Any], *, key: bool = False) -> Any:
        """What ``build`` returns, or None once its ValueError is a problem at ``path``
        (at its key with ``key``)."""
        try:
            return build()
        except ValueError as exc:
            self.refuse(path, f"cannot be sent: {exc}", key=key)
            return None

    def headers(self, path: Path, headers: dict[str, str]) -> None:
        for name, value in headers.items():
            self.attempt((*path, name), lambda n=name: wire.check_header_name(n), key=True)
            self.attempt((*path, name), lambda v=value: wire.check_header_value(v))


def check(plan: Plan, positions: Positions) -> list[Problem]:
    trial = _Trial(positions)
    target = plan.target
    probe = trial.attempt(("target", "base_url"),
                          lambda: _checked(wire.HttpRequest("GET", target.base_url + "/")))
    trial.headers(("target", "headers"), target.headers)
    trial.attempt(("target", "retry"), lambda: wire.policy_of(target.retry))
    if probe is not None:   # else every relative request would fail the same way
        for path, step, variables in _request_steps(plan):
            _step(trial, plan, path, step, variables)
        for name, metric in plan.metrics.items():
            _metric(trial, plan, name, metric)
    _webhooks(trial, plan)
    _ca_bundle(trial, target.verify)
    return trial.problems


def _request_steps(plan: Plan) -> Iterator[tuple[Path, RequestStep, dict[str, Any]]]:
    for i, stage in enumerate(plan.stages):
        variables = stand_in_variables(plan, stage)
        if plan.traffic is not None and stage.percentage is not None:
            yield ("traffic",), plan.traffic, variables
        for j, step in enumerate(stage.steps):
            if isinstance(step, RequestStep):
                yield ("stages", i, "steps", j), step, variables
    variables = stand_in_variables(plan, None)
    for j, step in enumerate(plan.rollback):
        if isinstance(step, RequestStep):
            yield ("rollback", j), step, variables


def _checked(request: wire.HttpRequest) -> wire.HttpRequest:
    wire.check_port(request.url)
    return request


def _step(trial: _Trial, plan: Plan, path: Path, step: RequestStep,
          variables: dict[str, Any]) -> None:
    try:
        resolved = resolve_request(plan, step, variables)
    except MissingVariable:
        return   # an unknown template name: reported by semantics
    trial.attempt((*path, "request"), lambda: _checked(wire.request_of(resolved)))
    trial.headers((*path, "headers"), step.headers)
    trial.attempt((*path, "json"), lambda: wire.check_json(resolved.json))
    trial.attempt((*path, "retry"), lambda: wire.policy_of(resolved.retry))


def _metric(trial: _Trial, plan: Plan, name: str, metric: Metric) -> None:
    provider = metric.provider
    source: Path = ("metrics", name, provider.key)
    at = provider.request_key(metric)
    variables = stand_in_variables(plan, plan.stages[0])
    try:
        requests = trial.attempt((*source, at) if at else source, lambda: [
            _checked(request) for request in provider.requests(plan, metric, variables, 1e9)])
    except MissingVariable:
        return
    for request in requests or ():
        trial.attempt((*source, "json"), lambda r=request: wire.check_json(r.json))
    # A provider's `headers:`, where it has them, are checked where they are written.
    trial.headers((*source, "headers"), getattr(metric.query, "headers", None) or {})


def _webhooks(trial: _Trial, plan: Plan) -> None:
    for index, entry in enumerate(plan.notify):
        if not entry.webhook:
            continue   # an empty webhook turns its entry off
        try:
            _checked(wire.HttpRequest("POST", entry.webhook, timeout=entry.timeout))
        except ValueError:
            # Not the error's text: it may quote part of the URL.
            trial.refuse(("notify", index, "webhook"),
                         "cannot be sent: not a valid http:// or https:// URL", _WEBHOOK_HINT)


def _ca_bundle(trial: _Trial, verify: bool | str) -> None:
    if not isinstance(verify, str):
        return
    import ssl  # only for a plan that names a bundle: loading ssl costs about 10 ms

    try:
        ssl.create_default_context(cafile=verify)   # what the HTTP driver does with it
    except ssl.SSLError as exc:
        trial.refuse(("target", "verify"), f"{verify} is not a CA bundle ({exc.reason})",
                     _CA_HINT)
    except OSError as exc:
        trial.refuse(("target", "verify"),
                     f"cannot read the CA bundle {verify}: {exc.strerror or exc}", _CA_HINT)

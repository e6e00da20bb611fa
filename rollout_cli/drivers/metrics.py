"""Metric providers: turn a plan's metrics into numbers, concurrently, one request per URL.

Every provider builds an HTTP request and parses its answer; all requests of a tick go
out together through ``HttpDriver.send_many``, which sends identical ones once (the
brain API's legacy and modern success rates come from one ``/ab-testing/results``).
A provider failure is an *error* measurement; an empty answer is *no data*, never 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from jmespath.exceptions import JMESPathError

from rollout_cli.drivers.expect import compile_expression, preview
from rollout_cli.drivers.http import POOL_LIMITS, HttpDriver, HttpOutcome
from rollout_cli.drivers.request import (
    HttpRequest,
    http_metric_request,
    policy_of,
    prometheus_request,
)
from rollout_cli.plan.models import Metric, Plan
from rollout_cli.plan.templates import MissingVariable, names_in

Value = float | list[float] | None

# A tick's requests all go out at once, one thread (and connection pool) each, up to 64.
MAX_FANOUT = POOL_LIMITS.max_connections or 64


class ProviderError(Exception):
    """A measurement that failed; the message is shown to the operator."""


class Provider(Protocol):
    def request(self, plan: Plan, metric: Metric, variables: Mapping[str, Any],
                now: float) -> HttpRequest: ...

    def parse(self, metric: Metric, outcome: HttpOutcome) -> Value: ...


_KINDS = {bool: "a boolean", str: "a string", dict: "an object", list: "a list"}


def _reading(value: Any) -> float | None:
    """A number, or a string that spells one; None for null and for NaN or infinity (no
    data). Anything else raises ValueError: true is not 1, nor an object a number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(value)
    number = float(value)
    return number if math.isfinite(number) else None


def _number(value: Any, what: str) -> float | None:
    try:
        return _reading(value)
    except ValueError:
        kind = _KINDS.get(type(value), type(value).__name__)
        raise ProviderError(f"{what} gave {preview(value)} ({kind}), not a number") from None


def _series(values: list[Any], what: str) -> list[float] | None:
    """A list of numbers is a series (nulls are gaps); a list holding anything else is an
    error, never a series of what could be read from it."""
    series = []
    for value in values:
        try:
            number = _reading(value)
        except ValueError:
            raise ProviderError(f"{what} gave {preview(values)}, and {preview(value)} is not "
                                "a number") from None
        if number is not None:
            series.append(number)
    return series or None


class HttpProvider:
    """A request from the plan plus a JMESPath ``select`` into its JSON answer."""

    request = staticmethod(http_metric_request)

    def parse(self, metric: Metric, outcome: HttpOutcome) -> Value:
        _require_ok(outcome)
        if outcome.json is None:
            raise ProviderError("the answer is not JSON")
        assert metric.select is not None
        what = f"select {metric.select}"
        try:
            selected = compile_expression(metric.select).search(outcome.json)
        except JMESPathError as exc:   # length(x) of a missing x: the answer's fault
            raise ProviderError(f"{what} could not be evaluated: {exc}") from None
        if isinstance(selected, list):
            return _series(selected, what)
        return _number(selected, what)


class PrometheusProvider:
    """Instant queries through /api/v1/query; range queries (a series) with ``range:``."""

    request = staticmethod(prometheus_request)

    def parse(self, metric: Metric, outcome: HttpOutcome) -> Value:
        body = outcome.json if isinstance(outcome.json, dict) else None
        if body is not None and body.get("status") == "error":
            raise ProviderError(f"prometheus {body.get('errorType', 'error')}: "
                                f"{body.get('error', 'no message')}")
        _require_ok(outcome)
        if body is None or "data" not in body:
            raise ProviderError("not a Prometheus API answer")
        data = body["data"]
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar":
            return _number(result[1], "the query")
        if not result:
            return None
        if len(result) > 1:
            raise ProviderError(f"the query returned {len(result)} series; aggregate it to "
                                "one, e.g. with sum(...)")
        series = result[0]
        if kind == "matrix":
            return _series([v for _, v in series.get("values", [])], "the query")
        return _number(series["value"][1], "the query")


def _require_ok(outcome: HttpOutcome) -> None:
    if outcome.status is None:
        raise ProviderError(outcome.error or "no answer")
    if not 200 <= outcome.status < 300:
        raise ProviderError(f"HTTP {outcome.status}")


PROVIDERS: dict[str, Provider] = {"http": HttpProvider(), "prometheus": PrometheusProvider()}


def provider_of(metric: Metric) -> Provider:
    return PROVIDERS["http" if metric.http is not None else "prometheus"]


@dataclass
class MetricFetcher:
    plan: Plan
    http: HttpDriver
    # None: as many at once as the tick has requests, up to MAX_FANOUT. 1 in simulations:
    # the in-process target gains nothing from threads.
    concurrency: int | None = None
    # HTTP metrics' requests by metric and the values of the variables their templates use:
    # a plan polls the same requests all day, and they do not depend on the time.
    _made: dict[tuple[Any, ...], HttpRequest] = field(default_factory=dict, init=False,
                                                      repr=False, compare=False)
    _uses: dict[str, tuple[str, ...]] = field(default_factory=dict, init=False, repr=False,
                                              compare=False)

    def fetch(self, names: list[str] | tuple[str, ...], variables: Mapping[str, Any],
              now: float) -> tuple[dict[str, Value], dict[str, str]]:
        """Values and errors by metric name; every request of the tick goes out at once."""
        policy = policy_of(self.plan.target.retry)
        values: dict[str, Value] = {}
        errors: dict[str, str] = {}
        planned: list[tuple[str, HttpRequest]] = []
        for name in names:
            metric = self.plan.metrics[name]
            try:
                planned.append((name, self._request(name, metric, variables, now)))
            except MissingVariable as missing:
                values[name], errors[name] = None, f"template variable {missing.name!r} unset"
        workers = self.concurrency or min(len(planned), MAX_FANOUT)
        outcomes = self.http.send_many([(request, policy) for _, request in planned],
                                       max_workers=workers)
        for (name, _), outcome in zip(planned, outcomes, strict=True):
            metric = self.plan.metrics[name]
            try:
                values[name] = provider_of(metric).parse(metric, outcome)
            except ProviderError as problem:
                values[name], errors[name] = None, str(problem)
        return values, errors

    def _request(self, name: str, metric: Metric, variables: Mapping[str, Any],
                 now: float) -> HttpRequest:
        """``provider.request(...)``, made once per distinct value of what it depends on."""
        provider = provider_of(metric)
        if metric.http is None:  # a Prometheus query is asked at ``now``: never the same
            return provider.request(self.plan, metric, variables, now)
        uses = self._uses.get(name)
        if uses is None:
            query = metric.http
            templates = [query.path, *self.plan.target.headers.values(),
                         *query.headers.values(), query.json_body]
            uses = self._uses[name] = tuple(dict.fromkeys(names_in(templates)))
        if not all(used in variables for used in uses):  # let the provider say what is missing
            return provider.request(self.plan, metric, variables, now)
        # By type too: 1, 1.0 and True are equal keys, and render as 1, 1 and true.
        key = (name, *((type(variables[used]), variables[used]) for used in uses))
        try:
            found = self._made.get(key)
        except TypeError:  # an unhashable value (a captured list or object)
            return provider.request(self.plan, metric, variables, now)
        if found is None:
            if len(self._made) >= 256:
                self._made.clear()
            found = self._made[key] = provider.request(self.plan, metric, variables, now)
        return found

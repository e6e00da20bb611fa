"""A tick's metrics into values, concurrently, each distinct request sent once.

Each metric's provider (``rollout_cli.providers``) builds its requests and reads their
answers; all requests of a tick go out together through ``HttpDriver.send_many``, which
sends identical ones once (the brain API's legacy and modern success rates come from one
``/ab-testing/results``). A provider failure is an *error* measurement; an empty answer is
*no data*, never 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from rollout_cli.drivers.http import POOL_LIMITS, HttpDriver
from rollout_cli.drivers.request import HttpRequest, policy_of
from rollout_cli.plan.models import Plan
from rollout_cli.plan.templates import MissingVariable, names_in
from rollout_cli.providers import ProviderError, Value

__all__ = ["MAX_FANOUT", "MetricFetcher", "ProviderError", "Value"]

# A tick's requests all go out at once, one thread (and connection pool) each, up to 64.
MAX_FANOUT = POOL_LIMITS.max_connections or 64


@dataclass
class MetricFetcher:
    plan: Plan
    http: HttpDriver
    # None: as many at once as the tick has requests, up to MAX_FANOUT. 1 in simulations:
    # the in-process target gains nothing from threads.
    concurrency: int | None = None
    # Requests by metric and the values of the variables their templates use: a plan polls
    # the same requests all day, and most do not depend on the time.
    _made: dict[tuple[Any, ...], tuple[HttpRequest, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False)
    # The variables each metric's requests use; None for requests made anew at every ``now``.
    _uses: dict[str, tuple[str, ...] | None] = field(default_factory=dict, init=False,
                                                     repr=False, compare=False)

    def fetch(self, names: list[str] | tuple[str, ...], variables: Mapping[str, Any],
              now: float) -> tuple[dict[str, Value], dict[str, str]]:
        """Values and errors by metric name; every request of the tick goes out at once."""
        policy = policy_of(self.plan.target.retry)
        values: dict[str, Value] = {}
        errors: dict[str, str] = {}
        # A metric split into parts is asked once for all of its parts that are named.
        wanted: dict[str, list[tuple[str, str | None]]] = {}
        for name in names:
            metric_name, part = self.plan.measured_names[name]
            wanted.setdefault(metric_name, []).append((name, part))
        planned: list[tuple[str, tuple[HttpRequest, ...]]] = []
        for name, asked in wanted.items():
            try:
                planned.append((name, self._requests(name, variables, now)))
            except MissingVariable as missing:
                for one, _ in asked:
                    values[one] = None
                    errors[one] = f"template variable {missing.name!r} unset"
        requests = [request for _, made in planned for request in made]
        workers = self.concurrency or min(len(requests), MAX_FANOUT)
        outcomes = iter(self.http.send_many([(request, policy) for request in requests],
                                            max_workers=workers))
        for name, made in planned:
            metric = self.plan.metrics[name]
            try:
                value = metric.provider.read(metric, list(islice(outcomes, len(made))))
            except ProviderError as problem:
                for one, _ in wanted[name]:
                    values[one], errors[one] = None, str(problem)
                continue
            for one, part in wanted[name]:
                values[one] = value.get(part) if isinstance(value, dict) else value
        return values, errors

    def _requests(self, name: str, variables: Mapping[str, Any],
                  now: float) -> tuple[HttpRequest, ...]:
        """The provider's requests, made once per distinct value of what they depend on."""
        metric = self.plan.metrics[name]
        provider = metric.provider
        if name not in self._uses:
            templates = provider.templates(self.plan, metric)
            self._uses[name] = None if templates is None else \
                tuple(dict.fromkeys(names_in(templates)))
        uses = self._uses[name]
        # Asked at ``now``, or with a variable missing: let the provider say which.
        if uses is None or not all(used in variables for used in uses):
            return provider.requests(self.plan, metric, variables, now)
        # By type too: 1, 1.0 and True are equal keys, and render as 1, 1 and true.
        key = (name, *((type(variables[used]), variables[used]) for used in uses))
        try:
            found = self._made.get(key)
        except TypeError:  # an unhashable value (a captured list or object)
            return provider.requests(self.plan, metric, variables, now)
        if found is None:
            if len(self._made) >= 256:
                self._made.clear()
            found = self._made[key] = provider.requests(self.plan, metric, variables, now)
        return found

"""``http:``: one request to the plan's target, and a JMESPath ``select:`` into its JSON.

    error_rate:
      http: {get: /api/admin/ab-testing/results}     # or {post: PATH, json: ...}, headers
      select: variants.modern.errorRate
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from jmespath.exceptions import JMESPathError

from rollout_cli.drivers.expect import compile_expression
from rollout_cli.drivers.request import HttpRequest
from rollout_cli.plan.calls import join_url
from rollout_cli.plan.fields import AnyValue, Model, Optional, Refused, field
from rollout_cli.plan.models import HEADERS, JMESPATH, MAYBE_TEXT
from rollout_cli.plan.templates import render, render_text
from rollout_cli.providers._numbers import ProviderError, Value, number, require_ok, series
from rollout_cli.providers._provider import Provider

if TYPE_CHECKING:
    from rollout_cli.drivers.http import HttpOutcome
    from rollout_cli.plan.models import Metric, Plan


class HttpQuery(Model):
    get: str | None = field(MAYBE_TEXT, None)
    post: str | None = field(MAYBE_TEXT, None)
    headers: dict[str, str] = field(HEADERS, {})
    json_body: Any = field(AnyValue(), None, key="json")

    def _check(self) -> None:
        if (self.get is None) == (self.post is None):
            raise ValueError("an http metric needs exactly one of `get:` or `post:`")

    @property
    def method(self) -> str:
        return "GET" if self.get is not None else "POST"

    @property
    def path(self) -> str:
        return self.get if self.get is not None else self.post  # type: ignore[return-value]


def _numeric_select(value: str, _: dict[str, Any]) -> None:
    """A comparison selects true or false, and a metric's value is a number: true is not 1."""
    import jmespath

    if jmespath.compile(value).parsed["type"] in ("comparator", "not_expression"):
        raise Refused(f"select {value!r} gives true or false, not a number",
                      f"count what matches instead: length([@][?{value}]) is 1 or 0")


class HttpProvider(Provider):
    """A request from the plan plus a JMESPath ``select`` into its JSON answer."""

    key = "http"
    query = HttpQuery
    beside: ClassVar[Mapping[str, Any]] = {
        "select": field(Optional(JMESPATH), None, check=_numeric_select)}
    simulated = True   # the sandbox is an HTTP target

    def check(self, metric: Metric) -> None:
        if metric.beside("select") is None:
            raise ValueError("an http metric needs `select:` (JMESPath into the response)")

    def request_key(self, metric: Metric) -> str:
        return "get" if metric.query.get is not None else "post"

    def describe(self, metric: Metric) -> str:
        query: HttpQuery = metric.query
        return f"{query.method} {query.path}, select {metric.beside('select')}"

    def requests(self, plan: Plan, metric: Metric, variables: Mapping[str, Any],
                 now: float) -> tuple[HttpRequest, ...]:
        """The plan's target, the query's path, headers and body."""
        query: HttpQuery = metric.query
        url = join_url(plan.target.base_url, render_text(query.path, variables))
        headers = {**plan.target.headers, **query.headers}
        return (HttpRequest(query.method, url, {k: render_text(v, variables).strip()
                                                for k, v in headers.items() if v.strip()},
                            render(query.json_body, variables), None, plan.target.timeout,
                            True),)

    def templates(self, plan: Plan, metric: Metric) -> list[Any]:
        query: HttpQuery = metric.query
        return [query.path, *plan.target.headers.values(), *query.headers.values(),
                query.json_body]

    def read(self, metric: Metric, outcomes: Sequence[HttpOutcome]) -> Value:
        (outcome,) = outcomes
        require_ok(outcome)
        if outcome.json is None:
            raise ProviderError("the answer is not JSON")
        select = metric.beside("select")
        what = f"select {select}"
        try:
            selected = compile_expression(select).search(outcome.json)
        except JMESPathError as exc:   # length(x) of a missing x: the answer's fault
            raise ProviderError(f"{what} could not be evaluated: {exc}") from None
        if isinstance(selected, list):
            return series(selected, what)
        return number(selected, what)


PROVIDER = HttpProvider()

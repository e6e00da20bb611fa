"""``prometheus:``: a PromQL query through Prometheus' HTTP API.

    error_ratio:
      prometheus:
        url: ${PROM_URL:-http://127.0.0.1:9090}
        query: sum(rate(brain_requests_total{code=~"5.."}[{{ interval }}]))
        range: 30m          # optional: a range query, giving a series (step: its resolution)

    latency_ms:             # one query, a series per variant: latency_ms.modern, .legacy
      prometheus:
        url: ${PROM_URL:-http://127.0.0.1:9090}
        query: sum by (variant) (rate(brain_request_duration_seconds_sum[{{ rate_window }}]))
        split: {label: variant, parts: [modern, legacy]}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from rollout_cli.drivers.request import HttpRequest
from rollout_cli.plan.fields import ListOf, Model, Nested, Optional, Text, field
from rollout_cli.plan.models import HEADERS, MAYBE_POSITIVE_DURATION, TEXT, _http_url
from rollout_cli.plan.templates import render_text
from rollout_cli.providers._numbers import ProviderError, Value, number, require_ok, series
from rollout_cli.providers._provider import Provider

if TYPE_CHECKING:
    from rollout_cli.drivers.http import HttpOutcome
    from rollout_cli.plan.models import Metric, Plan


class Split(Model):
    """Name the parts of a query's answer by a label: one series per value of it."""

    label: str = field(Text(r"^[a-zA-Z_][a-zA-Z0-9_]*$", "a Prometheus label name"))
    parts: tuple[str, ...] = field(
        ListOf(Text(r"^[A-Za-z0-9_-]+$", "letters, digits, '_' or '-'"), min_items=1),
        description="The label's values, each a part: metric `x` with part `modern` is "
                    "`x.modern` in checks.")


class PrometheusQuery(Model):
    url: str = field(_http_url("prometheus url"))
    query: str = field(TEXT, description="PromQL; {{ percentage }}, {{ stage }}, "
                                         "{{ interval }}, {{ rate_window }} allowed.")
    range: float | None = field(MAYBE_POSITIVE_DURATION, None,
                                description="Query a range this long (a series).")
    step: float | None = field(MAYBE_POSITIVE_DURATION, None)
    headers: dict[str, str] = field(HEADERS, {})
    split: Split | None = field(Optional(Nested(Split)), None,
                                description="A series per value of a label, each a part.")


class PrometheusProvider(Provider):
    """Instant queries through /api/v1/query; range queries (a series) with ``range:``."""

    key = "prometheus"
    query = PrometheusQuery
    alone = "PromQL selects by itself"
    simulated = False   # the sandbox serves /metrics to be scraped, not the query API

    def request_key(self, metric: Metric) -> str:
        return "url"

    def describe(self, metric: Metric) -> str:
        prom: PrometheusQuery = metric.query
        from rollout_cli.plan.durations import format_duration

        ranged = f" (range {format_duration(prom.range)}" + (
            f", step {format_duration(prom.step)})" if prom.step else ")") if prom.range else ""
        split = (f", split by {prom.split.label} into {', '.join(prom.split.parts)}"
                 if prom.split is not None else "")
        return f"PromQL at {prom.url}{ranged}{split}: {prom.query}"

    def whole_window(self, metric: Metric) -> bool:
        return metric.query.range is not None

    def parts(self, metric: Metric) -> tuple[str, ...]:
        split = metric.query.split
        return split.parts if split is not None else ()

    def requests(self, plan: Plan, metric: Metric, variables: Mapping[str, Any],
                 now: float) -> tuple[HttpRequest, ...]:
        """An instant query at ``now``; with ``range:``, a range query ending at ``now``."""
        prom: PrometheusQuery = metric.query
        query = render_text(prom.query, variables)
        if prom.range:
            step = prom.step or max(prom.range / 60, 1.0)
            params = urlencode({"query": query, "start": f"{now - prom.range:.3f}",
                                "end": f"{now:.3f}", "step": f"{step:g}"})
            url = f"{prom.url}/api/v1/query_range?{params}"
        else:
            # Every query of a tick is evaluated at the same instant, so two checks
            # over the same series agree on what they saw.
            url = f"{prom.url}/api/v1/query?{urlencode({'query': query, 'time': f'{now:.3f}'})}"
        return (HttpRequest("GET", url, dict(prom.headers), None, None, plan.target.timeout,
                            True),)

    def syntax_requests(self, plan: Plan, metric: Metric, variables: Mapping[str, Any]
                        ) -> tuple[HttpRequest, ...]:
        """/api/v1/parse_query (Prometheus 3), then an instant query (any version)."""
        prom: PrometheusQuery = metric.query
        query = urlencode({"query": render_text(prom.query, variables)})
        return tuple(HttpRequest("GET", f"{prom.url}/api/v1/{endpoint}?{query}",
                                 dict(prom.headers), None, None, plan.target.timeout, True)
                     for endpoint in ("parse_query", "query"))

    def syntax_error(self, metric: Metric, outcome: HttpOutcome) -> str | None:
        body = outcome.json if isinstance(outcome.json, dict) else {}
        if body.get("status") == "error" and body.get("errorType") == "bad_data":
            return str(body.get("error", "bad query"))
        if outcome.status is not None and 200 <= outcome.status < 300 and \
                body.get("status") == "success":
            return ""
        return None     # 404 (no parse_query), or an answer that is not about the query

    def read(self, metric: Metric, outcomes: Sequence[HttpOutcome]
             ) -> Value | dict[str, Value]:
        (outcome,) = outcomes
        body = outcome.json if isinstance(outcome.json, dict) else None
        if body is not None and body.get("status") == "error":
            raise ProviderError(f"prometheus {body.get('errorType', 'error')}: "
                                f"{body.get('error', 'no message')}")
        require_ok(outcome)
        if body is None or "data" not in body:
            raise ProviderError("not a Prometheus API answer")
        data = body["data"]
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar":
            if metric.query.split is not None:
                raise ProviderError(f"the query gave a scalar; split by "
                                    f"{metric.query.split.label} needs a series per value")
            return number(result[1], "the query")
        if metric.query.split is not None:
            return _split(metric.query.split, kind, result or [])
        if not result:
            return None
        if len(result) > 1:
            raise ProviderError(f"the query returned {len(result)} series; aggregate it to "
                                "one, e.g. with sum(...)")
        return _value(kind, result[0], "the query")


def _value(kind: str, found: dict[str, Any], what: str) -> Value:
    if kind == "matrix":
        return series([v for _, v in found.get("values", [])], what)
    return number(found["value"][1], what)


def _split(split: Split, kind: str, result: list[dict[str, Any]]) -> dict[str, Value]:
    """Each part's value: the series whose label has the part's value; a part without one
    has no data, and series of other values are not asked for."""
    values: dict[str, Value] = dict.fromkeys(split.parts)
    seen: set[str] = set()
    for found in result:
        part = found.get("metric", {}).get(split.label)
        if part not in values:
            continue
        if part in seen:
            raise ProviderError(f"the query returned more than one series with "
                                f"{split.label}={part!r}; aggregate it by that label, e.g. "
                                f"sum by ({split.label}) (...)")
        seen.add(part)
        values[part] = _value(kind, found, f"the query's {split.label}={part!r} series")
    return values


PROVIDER = PrometheusProvider()

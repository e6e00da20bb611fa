"""Metric providers: what counts as a value, as no data, and as an error. Prometheus
answers that a real server rarely gives on demand come from a MockTransport."""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest

from rollout_cli.drivers.http import HttpDriver
from rollout_cli.drivers.metrics import MetricFetcher
from rollout_cli.plan import load_text

PLAN = """\
version: 1
name: metrics
target: {base_url: "http://127.0.0.1:9", retry: {attempts: 1}}
metrics:
  modern: {http: {get: /results}, select: variants.modern.successRate}
  legacy: {http: {get: /results}, select: variants.legacy.successRate}
  running: {http: {get: /results}, select: "length([@][?status == 'running'])"}
  series: {http: {get: /results}, select: "samples[*].heap"}
  word: {http: {get: /results}, select: status}
  enabled: {http: {get: /results}, select: enabled}
  text: {http: {get: /results}, select: rate}
  whole: {http: {get: /results}, select: variants.modern}
  mixed: {http: {get: /results}, select: "samples[*].label"}
  missing: {http: {get: /results}, select: length(leaks)}
  errors: {prometheus: {url: "http://127.0.0.1:9090", query: 'sum(rate(x{stage="{{ stage }}"}[{{ interval }}]))'}}
stages:
  - {name: only}
"""
RESULTS = {"status": "running", "enabled": True, "rate": "0.99",
           "samples": [{"heap": 1, "label": "a"}, {"heap": 2.5}, {"heap": None, "label": 3}],
           "variants": {"modern": {"successRate": 0.97}, "legacy": {"successRate": None}}}


def fetcher(handler) -> tuple[MetricFetcher, Counter]:  # type: ignore[no-untyped-def]
    seen: Counter = Counter()

    def record(request: httpx.Request) -> httpx.Response:
        seen[str(request.url)] += 1
        return handler(request)

    plan = load_text(PLAN, "m.yaml", {}).plan
    return MetricFetcher(plan, HttpDriver(transport=httpx.MockTransport(record))), seen


def prometheus(body: dict, status: int = 200):  # type: ignore[no-untyped-def]
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/api/v1/"):
            return httpx.Response(status, json=body)
        return httpx.Response(200, json=RESULTS)
    return handler


VARIABLES = {"stage": "canary-10", "interval": "5m"}


def test_http_values_and_one_request_for_identical_ones():
    metrics, seen = fetcher(prometheus({"status": "success", "data": {"resultType": "vector",
                                                                     "result": []}}))

    values, errors = metrics.fetch(["modern", "legacy", "running", "series", "word"],
                                   VARIABLES, 1000.0)

    assert values["modern"] == 0.97
    assert values["legacy"] is None and "legacy" not in errors  # null is no data, not 0
    assert values["running"] == 1.0
    assert values["series"] == [1.0, 2.5]   # a list of numbers is a series; null is a gap
    assert values["word"] is None
    assert errors["word"] == 'select status gave "running" (a string), not a number'
    assert sum(seen.values()) == 1


def test_only_numbers_are_numbers():
    metrics, _ = fetcher(lambda request: httpx.Response(200, json=RESULTS))

    values, errors = metrics.fetch(["text", "enabled", "whole", "mixed", "missing"],
                                   VARIABLES, 1000.0)

    assert values == {"text": 0.99, "enabled": None, "whole": None, "mixed": None,
                      "missing": None}
    assert "text" not in errors
    assert errors["enabled"] == "select enabled gave true (a boolean), not a number"
    assert errors["whole"] == ('select variants.modern gave {"successRate": 0.97} '
                               "(an object), not a number")
    assert errors["mixed"] == 'select samples[*].label gave ["a", 3], and "a" is not a number'
    assert errors["missing"].startswith("select length(leaks) could not be evaluated: ")


@pytest.mark.parametrize(("body", "value", "error"), [
    ({"status": "success", "data": {"resultType": "vector", "result": []}}, None, None),
    ({"status": "success", "data": {"resultType": "vector",
                                    "result": [{"metric": {}, "value": [1, "NaN"]}]}}, None, None),
    ({"status": "success", "data": {"resultType": "vector",
                                    "result": [{"metric": {}, "value": [1, "+Inf"]}]}}, None, None),
    ({"status": "success", "data": {"resultType": "vector",
                                    "result": [{"metric": {}, "value": [1, "0.042"]}]}}, 0.042, None),
    ({"status": "success", "data": {"resultType": "scalar", "result": [1, "3"]}}, 3.0, None),
    ({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"a": "1"}, "value": [1, "1"]}, {"metric": {"a": "2"}, "value": [1, "2"]}]}},
     None, "the query returned 2 series; aggregate it to one, e.g. with sum(...)"),
    ({"status": "error", "errorType": "bad_data",
      "error": "1:5: parse error: unexpected character"}, None,
     "prometheus bad_data: 1:5: parse error: unexpected character"),
])
def test_prometheus_answers(body, value, error):
    metrics, seen = fetcher(prometheus(body, 400 if body["status"] == "error" else 200))

    values, errors = metrics.fetch(["errors"], VARIABLES, 1000.0)

    assert values["errors"] == value
    assert errors.get("errors") == error
    url = next(iter(seen))
    assert "query=sum%28rate%28x%7Bstage%3D%22canary-10%22%7D%5B5m%5D%29%29" in url
    assert "time=1000.000" in url


def test_unreachable_source_is_an_error_never_a_value():
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    metrics, _ = fetcher(down)

    values, errors = metrics.fetch(["modern", "errors"], VARIABLES, 1000.0)

    assert values == {"modern": None, "errors": None}
    assert set(errors) == {"modern", "errors"}
    assert all("connect" in message for message in errors.values())


def test_http_error_status_is_an_error():
    metrics, _ = fetcher(lambda request: httpx.Response(503, json={"error": "busy"}))

    _, errors = metrics.fetch(["modern"], VARIABLES, 1000.0)

    assert errors == {"modern": "HTTP 503"}


def test_results_are_json_serialisable():
    metrics, _ = fetcher(prometheus({"status": "success", "data": {"resultType": "vector",
                                                                  "result": []}}))

    values, errors = metrics.fetch(["modern", "series", "errors"], VARIABLES, 1000.0)

    assert json.loads(json.dumps({"values": values, "errors": errors}))["values"]["modern"] == 0.97


TEMPLATED = """\
version: 1
name: templated
target: {base_url: "http://127.0.0.1:9", retry: {attempts: 1},
         headers: {X-Rollout: "{{ rollout_id }}"}}
metrics:
  share: {http: {get: "/results?p={{ percentage }}"}, select: variants.modern.successRate}
  posted: {http: {post: /query, json: {test: "{{ stage }}"}}, select: variants.modern.successRate}
stages:
  - {name: only}
"""


def test_http_requests_follow_the_variables_their_templates_use():
    sent: list[tuple[str, str, bytes]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append((str(request.url), request.headers["X-Rollout"], request.read()))
        return httpx.Response(200, json=RESULTS)

    plan = load_text(TEMPLATED, "t.yaml", {}).plan
    metrics = MetricFetcher(plan, HttpDriver(transport=httpx.MockTransport(handler)))
    base = {"rollout_id": "r-1", "stage": "only", "interval": "5m"}

    for variables in ({**base, "percentage": 10}, {**base, "percentage": 10},
                      {**base, "percentage": 10.0}, {**base, "percentage": True},
                      {**base, "percentage": 25, "rollout_id": "r-2"},
                      {**base, "percentage": 25, "stage": ["a", "list"]}):
        values, errors = metrics.fetch(["share", "posted"], variables, 1000.0)
        assert values == {"share": 0.97, "posted": 0.97} and errors == {}

    assert [(url, who) for url, who, _ in sent[::2]] == [
        ("http://127.0.0.1:9/results?p=10", "r-1"), ("http://127.0.0.1:9/results?p=10", "r-1"),
        ("http://127.0.0.1:9/results?p=10", "r-1"), ("http://127.0.0.1:9/results?p=true", "r-1"),
        ("http://127.0.0.1:9/results?p=25", "r-2"), ("http://127.0.0.1:9/results?p=25", "r-1")]
    assert [json.loads(body) for _, _, body in sent[1::2]] == [
        {"test": "only"}] * 5 + [{"test": ["a", "list"]}]

    values, errors = metrics.fetch(["share"], {k: v for k, v in base.items()
                                               if k != "rollout_id"} | {"percentage": 10}, 1.0)
    assert values == {"share": None} and errors == {"share": "template variable 'rollout_id' unset"}

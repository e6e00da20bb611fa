"""The prometheus provider: the query it builds at ``now``, and what it reads of Prometheus'
HTTP API answers (a real server's are in tests/analysis/test_analysis_live.py)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from rollout_cli.providers import ProviderError, registered
from rollout_cli.providers.prometheus import PROVIDER
from tests.providers.support import Answer, plan_with, read, same

VARIABLES = {"rollout_id": "r-1", "stage": "canary", "percentage": 25, "interval": "5m"}
QUERY = 'sum(rate(x{stage="{{ stage }}"}[{{ interval }}]))'
RENDERED = 'sum(rate(x{stage="canary"}[5m]))'

# (the keys under `prometheus:`, expected URL path, query parameters, headers)
REQUESTS = [
    (f"url: 'http://prom:9090', query: '{QUERY}'",
     "http://prom:9090/api/v1/query", {"query": RENDERED, "time": "1000.000"}, {}),
    ("url: 'http://prom:9090/', query: up",   # a trailing slash is not doubled
     "http://prom:9090/api/v1/query", {"query": "up", "time": "1000.000"}, {}),
    ("url: 'https://prom/base', query: up, headers: {Authorization: Bearer t}",
     "https://prom/base/api/v1/query", {"query": "up", "time": "1000.000"},
     {"Authorization": "Bearer t"}),
    ("url: 'http://prom:9090', query: up, range: 30m",   # step: range / 60
     "http://prom:9090/api/v1/query_range",
     {"query": "up", "start": "-800.000", "end": "1000.000", "step": "30"}, {}),
    ("url: 'http://prom:9090', query: up, range: 30s",   # step: at least 1s
     "http://prom:9090/api/v1/query_range",
     {"query": "up", "start": "970.000", "end": "1000.000", "step": "1"}, {}),
    ("url: 'http://prom:9090', query: up, range: 1h, step: 15s",
     "http://prom:9090/api/v1/query_range",
     {"query": "up", "start": "-2600.000", "end": "1000.000", "step": "15"}, {}),
]


@pytest.mark.parametrize(("keys", "where", "params", "headers"), REQUESTS)
def test_request(keys: str, where: str, params: dict[str, str], headers: dict[str, str]):
    plan = plan_with(f"m: {{prometheus: {{{keys}}}}}")

    (request,) = PROVIDER.requests(plan, plan.metrics["m"], VARIABLES, 1000.0)

    url = urlsplit(request.url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == where
    assert dict(parse_qsl(url.query)) == params
    assert (request.method, request.headers, request.json, request.timeout) == \
        ("GET", headers, None, 7.0)   # the plan target's timeout, not its headers


def test_a_query_is_asked_at_now_so_it_is_never_reused():
    plan = plan_with("m: {prometheus: {url: 'http://prom:9090', query: up}}")

    assert PROVIDER.templates(plan, plan.metrics["m"]) is None


def vector(*values: str) -> dict[str, object]:
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"n": str(i)}, "value": [1, value]} for i, value in enumerate(values)]}}


def matrix(*values: str) -> dict[str, object]:
    return {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {}, "values": [[i, value] for i, value in enumerate(values)]}]}}


# (answer, expected value, or the error it gives)
READS = [
    (Answer(json=vector("0.042")), 0.042),
    (Answer(json=vector()), None),
    (Answer(json=vector("NaN")), None),
    (Answer(json=vector("+Inf")), None),
    (Answer(json={"status": "success", "data": {"resultType": "scalar", "result": [1, "3"]}}),
     3.0),
    (Answer(json=matrix("1", "NaN", "2.5")), [1.0, 2.5]),
    (Answer(json=matrix("NaN")), None),
    (Answer(json=matrix()), None),
    (Answer(json=vector("1", "2")),
     ProviderError("the query returned 2 series; aggregate it to one, e.g. with sum(...)")),
    (Answer(status=400, json={"status": "error", "errorType": "bad_data",
                              "error": "1:5: parse error"}),
     ProviderError("prometheus bad_data: 1:5: parse error")),
    (Answer(status=503, json={"status": "error"}), ProviderError("prometheus error: no message")),
    (Answer(status=503, json=None), ProviderError("HTTP 503")),
    (Answer(json={"up": 1}), ProviderError("not a Prometheus API answer")),
    (Answer(json=[1]), ProviderError("not a Prometheus API answer")),
    (Answer(json=None), ProviderError("not a Prometheus API answer")),
    (Answer(status=None, error="timed out"), ProviderError("timed out")),
    (Answer(json={"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {}, "value": [1, "up"]}]}}),
     ProviderError('the query gave "up" (a string), not a number')),
]


@pytest.mark.parametrize(("answer", "expected"), READS)
def test_read(answer: Answer, expected: object):
    plan = plan_with("m: {prometheus: {url: 'http://prom:9090', query: up}}")

    found = read(plan.metrics["m"], answer)

    assert same(found, expected), found


def test_the_registry_has_it_by_its_key_and_simulate_cannot_answer_it():
    plan = plan_with("m: {prometheus: {url: 'http://prom:9090', query: up, range: 5m}}")

    assert registered()["prometheus"] is PROVIDER is plan.metrics["m"].provider
    assert plan.metrics["m"].query.range == 300.0
    assert not PROVIDER.simulated


def by_variant(kind: str, **series: list[str]) -> dict[str, object]:
    key = "values" if kind == "matrix" else "value"
    return {"status": "success", "data": {"resultType": kind, "result": [
        {"metric": {"variant": name.split("_")[0]},
         key: [[i, v] for i, v in enumerate(values)] if kind == "matrix" else [1, values[0]]}
        for name, values in series.items()]}}


SPLIT = "m: {prometheus: {url: 'http://prom:9090', query: 'sum by (variant) (x)', " \
        "split: {label: variant, parts: [modern, legacy]}}}"

# (answer, expected values by part, or the error it gives)
SPLIT_READS = [
    (Answer(json=by_variant("vector", modern=["0.04"], legacy=["0.03"], canary=["9"])),
     {"modern": 0.04, "legacy": 0.03}),
    (Answer(json=by_variant("vector", legacy=["0.03"])), {"modern": None, "legacy": 0.03}),
    (Answer(json=by_variant("matrix", modern=["1", "2"], legacy=["3", "NaN"])),
     {"modern": [1.0, 2.0], "legacy": [3.0]}),
    (Answer(json=by_variant("vector", modern=["1"], modern_again=["2"])),
     ProviderError("the query returned more than one series with variant='modern'; aggregate "
                   "it by that label, e.g. sum by (variant) (...)")),
    (Answer(json={"status": "success", "data": {"resultType": "scalar", "result": [1, "3"]}}),
     ProviderError("the query gave a scalar; split by variant needs a series per value")),
]


@pytest.mark.parametrize(("answer", "expected"), SPLIT_READS)
def test_a_split_metric_reads_a_value_per_part(answer: Answer, expected: object):
    plan = plan_with(SPLIT)

    found = read(plan.metrics["m"], answer)

    assert same(found, expected), found


def test_checks_name_the_parts_of_a_split_metric():
    plan = plan_with(SPLIT)

    assert plan.measured_names == {"m.modern": ("m", "modern"), "m.legacy": ("m", "legacy")}

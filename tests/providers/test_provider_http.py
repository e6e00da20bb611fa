"""The http provider: the request it builds from a metric, and what it reads of an answer.
Only numbers are numbers: anything else selected is an error that says what it was."""

from __future__ import annotations

import pytest

from rollout_cli.providers import ProviderError, registered
from rollout_cli.providers.http import PROVIDER
from tests.providers.support import Answer, plan_with, read, same

VARIABLES = {"rollout_id": "r-1", "stage": "canary", "percentage": 25, "interval": "5m"}
AUTH = {"Authorization": "Bearer r-1"}

# (metric, expected method, URL, headers, JSON body)
REQUESTS = [
    ("{http: {get: /results}, select: a}",
     "GET", "http://target:8080/results", AUTH, None),
    ("{http: {get: 'results?p={{ percentage }}&s={{ stage }}'}, select: a}",
     "GET", "http://target:8080/results?p=25&s=canary", AUTH, None),
    ("{http: {get: 'https://elsewhere/x'}, select: a}",
     "GET", "https://elsewhere/x", AUTH, None),
    ("{http: {post: /query, json: {stage: '{{ stage }}', at: '{{ percentage }}'}}, select: a}",
     "POST", "http://target:8080/query", AUTH, {"stage": "canary", "at": 25}),
    ("{http: {get: /x, headers: {Authorization: Basic abc, X-Stage: ' {{ stage }} '}}, select: a}",
     "GET", "http://target:8080/x", {"Authorization": "Basic abc", "X-Stage": "canary"}, None),
]


@pytest.mark.parametrize(("metric", "method", "url", "headers", "body"), REQUESTS)
def test_request(metric: str, method: str, url: str, headers: dict[str, str], body: object):
    plan = plan_with(f"m: {metric}")

    (request,) = PROVIDER.requests(plan, plan.metrics["m"], VARIABLES, 1000.0)

    assert (request.method, request.url, request.headers, request.json) == \
        (method, url, headers, body)
    assert (request.timeout, request.idempotent, request.body) == (7.0, True, None)


def test_templates_name_what_the_request_depends_on_and_not_the_time():
    plan = plan_with("m: {http: {post: '/q?{{ stage }}', json: ['{{ percentage }}']}, select: a}")
    metric = plan.metrics["m"]

    templates = PROVIDER.templates(plan, metric)

    assert templates == ["/q?{{ stage }}", "Bearer {{ rollout_id }}", "  ",
                         ("{{ percentage }}",)]
    assert PROVIDER.requests(plan, metric, VARIABLES, 1.0) == \
        PROVIDER.requests(plan, metric, VARIABLES, 2.0)


BODY = {"rate": 0.97, "text": "0.99", "nan": "NaN", "inf": "-Infinity", "none": None,
        "flag": True, "word": "up", "object": {"a": 1},
        "samples": [{"v": 1}, {"v": None}, {"v": "2.5"}], "gaps": [None, None], "empty": [],
        "mixed": [1, "x"], "flags": [True]}

# (select, answer, expected value, or the error it gives)
READS = [
    ("rate", Answer(json=BODY), 0.97),
    ("text", Answer(json=BODY), 0.99),
    ("nan", Answer(json=BODY), None),
    ("inf", Answer(json=BODY), None),
    ("none", Answer(json=BODY), None),
    ("missing", Answer(json=BODY), None),
    ("length(samples)", Answer(json=BODY), 3.0),
    ("samples[*].v", Answer(json=BODY), [1.0, 2.5]),
    ("gaps", Answer(json=BODY), None),
    ("empty", Answer(json=BODY), None),
    ("flag", Answer(json=BODY), ProviderError("select flag gave true (a boolean), not a number")),
    ("word", Answer(json=BODY), ProviderError('select word gave "up" (a string), not a number')),
    ("object", Answer(json=BODY),
     ProviderError('select object gave {"a": 1} (an object), not a number')),
    ("mixed", Answer(json=BODY),
     ProviderError('select mixed gave [1, "x"], and "x" is not a number')),
    ("flags", Answer(json=BODY), ProviderError("select flags gave [true], and true is not a number")),
    ("length(leaks)", Answer(json=BODY),
     ProviderError("select length(leaks) could not be evaluated: In function length(), invalid "
                   "type for value: None, expected one of: ['string', 'array', 'object'], "
                   "received: \"null\"")),
    ("rate", Answer(json=None), ProviderError("the answer is not JSON")),
    ("rate", Answer(status=503, json=BODY), ProviderError("HTTP 503")),
    ("rate", Answer(status=302, json=BODY), ProviderError("HTTP 302")),
    ("rate", Answer(status=None, error="connect: refused"), ProviderError("connect: refused")),
    ("rate", Answer(status=None), ProviderError("no answer")),
]


@pytest.mark.parametrize(("select", "answer", "expected"), READS)
def test_read(select: str, answer: Answer, expected: object):
    plan = plan_with(f"m: {{http: {{get: /x}}, select: '{select}'}}")

    found = read(plan.metrics["m"], answer)

    assert same(found, expected), found


def test_the_registry_has_it_by_its_key():
    plan = plan_with("m: {http: {get: /x}, select: a}")

    assert registered()["http"] is PROVIDER is plan.metrics["m"].provider
    assert plan.metrics["m"].query.get == "/x" and plan.metrics["m"].beside("select") == "a"
    assert PROVIDER.simulated

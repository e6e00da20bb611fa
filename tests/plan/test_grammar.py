"""Durations, check expressions and templates: table-driven, parsed never evaluated."""

from __future__ import annotations

import pytest

from rollout_cli.engine.checks import Sample, evaluate
from rollout_cli.plan import load_text
from rollout_cli.plan.durations import format_duration, parse_duration
from rollout_cli.plan.expressions import describe_bands, parse_threshold
from rollout_cli.plan.fields import parse
from rollout_cli.plan.models import Check
from rollout_cli.plan.templates import MissingVariable, render

DURATIONS = [("500ms", 0.5), ("30s", 30), ("5m", 300), ("2h", 7200), ("1h30m", 5400),
             ("1d", 86400), ("1.5h", 5400), (0, 0), ("0", 0), ("2h 30m", 9000)]


@pytest.mark.parametrize(("text", "seconds"), DURATIONS)
def test_duration_parses(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("text", "message"), [
    ("5", "bad duration '5'"), (5, "has no unit; write 5s"), ("5 minutes", "bad duration"),
    ("-5m", "bad duration"), ("h", "bad duration"), (True, "expected a duration"),
    ("", "bad duration"), (None, "expected a duration"),
])
def test_duration_refuses(text, message):
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


@pytest.mark.parametrize(("seconds", "text"), [(5400, "1h30m"), (0.5, "500ms"), (0, "0s"),
                                               (172800, "48h"), (61, "1m1s")])
def test_duration_formats(seconds, text):
    assert format_duration(seconds) == text


THRESHOLDS = [
    (">= 0.95", ">=", 0.95, "absolute", [(0.95, True), (0.9499, False)]),
    ("< 0.90", "<", 0.90, "absolute", [(0.89, True), (0.90, False)]),
    ("== 0", "==", 0, "absolute", [(0, True), (1, False)]),
    ("!= 0", "!=", 0, "absolute", [(0, False), (2, True)]),
    ("> +20%", ">", 0.20, "relative", [(0.21, True), (0.2, False)]),
    ("<= +0%", "<=", 0.0, "relative", [(0.0, True), (0.001, False), (-0.1, True)]),
    ("<= -5%", "<=", -0.05, "relative", [(-0.06, True), (0.0, False)]),
    ("> 50/h", ">", 50, "slope", [(51, True), (50, False)]),
    ("> 1/m", ">", 60, "slope", [(61, True)]),
    ("<= 2/s", "<=", 7200, "slope", [(7200, True)]),
    (">=1e-3", ">=", 0.001, "absolute", [(0.001, True)]),
    ("  >  .5  ", ">", 0.5, "absolute", [(0.6, True)]),
]


@pytest.mark.parametrize(("text", "op", "value", "kind", "probes"), THRESHOLDS)
def test_threshold_parses_and_compares(text, op, value, kind, probes):
    threshold = parse_threshold(text)

    assert (threshold.op, threshold.kind) == (op, kind)
    assert threshold.value == pytest.approx(value)
    for observed, holds in probes:
        assert threshold.holds(observed) is holds, observed


@pytest.mark.parametrize("text", ["0.95", ">=", "=> 1", "> 1 and < 2", "> 5%%", "> 5/w",
                                  "> nan", "> inf", "> __import__('os')", "", 0.5, True, None])
def test_threshold_refuses(text):
    with pytest.raises(ValueError):
        parse_threshold(text)


PLAN_WITH_LIST = """\
version: 1
name: p
target: {base_url: "http://127.0.0.1:9"}
stages:
  - name: s
    steps:
      - request: GET /t
        capture: {test_id: id}
      - request: POST /x
        json: {ids: ["{{ test_id }}", {id: "{{ test_id }}"}]}
"""


def test_template_keeps_type_of_a_whole_value():
    variables = {"percentage": 25.0, "stage": "canary-25", "test_id": "t-1"}

    assert render({"rolloutPercentage": "{{ percentage }}"}, variables) == {"rolloutPercentage": 25}
    assert render("/stages/{{stage}}/at/{{ percentage }}", variables) == "/stages/canary-25/at/25"
    assert render(["{{ test_id }}", 3, None], variables) == ["t-1", 3, None]


def test_templates_are_filled_inside_a_plans_lists():
    plan = load_text(PLAN_WITH_LIST, "p.yaml", {}).plan
    body = plan.stages[0].steps[1].json_body

    assert render(body, {"test_id": "t-1"}) == {"ids": ["t-1", {"id": "t-1"}]}


def test_template_missing_variable_names_it():
    with pytest.raises(MissingVariable) as caught:
        render("/x/{{ test_id }}", {})

    assert caught.value.name == "test_id"


# (pass, fail, what `rollout plan` says, {value: the engine's verdict on it})
BANDS = [
    (">= 0.95", "< 0.90", "pass >= 0.95, fail < 0.90, inconclusive between",
     {0.96: "pass", 0.95: "pass", 0.92: "inconclusive", 0.90: "inconclusive", 0.5: "fail"}),
    (None, "> 0", "fail > 0, pass otherwise", {3: "fail", 0: "pass", -1: "pass"}),
    (">= 1", None, "pass >= 1, fail otherwise", {1: "pass", 0.5: "fail"}),
    ("== 0", "> 0", "pass == 0, fail > 0, inconclusive otherwise",
     {0: "pass", 2: "fail", -1: "inconclusive"}),
    ("== 1", "== 0", "pass == 1, fail == 0, inconclusive otherwise",
     {1: "pass", 0: "fail", 0.5: "inconclusive", 7: "inconclusive"}),
    (">= 0.95", "< 0.95", "pass >= 0.95, fail < 0.95", {0.95: "pass", 0.94: "fail"}),
    (">= 0.90", "< 0.95", "pass >= 0.90, fail < 0.95, fail where they overlap",
     {0.92: "fail", 0.96: "pass", 0.5: "fail"}),
    ("< 5", "< 2", "pass < 5, fail < 2, fail where they overlap, inconclusive otherwise",
     {1: "fail", 3: "pass", 6: "inconclusive"}),
]


@pytest.mark.parametrize(("passing", "failing", "text", "verdicts"), BANDS,
                         ids=[b[2] for b in BANDS])
def test_bands_are_described_as_the_engine_judges_them(passing, failing, text, verdicts):
    spec = {"metric": "m", **({"pass": passing} if passing else {}),
            **({"fail": failing} if failing else {})}
    check = parse(Check, spec)

    assert describe_bands(check.pass_, check.fail) == text
    for value, verdict in verdicts.items():
        assert evaluate("c", check, [Sample(0.0, value)], 0.0).phase == verdict, value

"""Response expectations: table-driven, no I/O."""

from __future__ import annotations

from typing import Any

import jmespath
import pytest

from rollout_cli.drivers.expect import (
    capture,
    check_condition,
    check_status,
    compile_expression,
    preview,
)

RESULTS = {
    "testId": "brain-api-modern-rollout",
    "enabled": True,
    "variants": {
        "modern": {"successRate": 0.97, "errors": 0, "samples": []},
        "legacy": {"successRate": 0.99, "errors": 3},
    },
}


@pytest.mark.parametrize(
    ("status", "expected", "message"),
    [
        (200, None, None),
        (204, None, None),
        (299, [], None),
        (302, None, "status 302, expected 2xx"),
        (503, None, "status 503, expected 2xx"),
        (404, [200], "status 404, expected 200"),
        (409, [201, 200], "status 409, expected one of [200, 201]"),
        (404, [404, 410], None),
        (None, None, "no response received"),
        (None, [200], "no response received"),
    ],
)
def test_check_status(status: int | None, expected: list[int] | None, message: str | None) -> None:
    assert check_status(status, expected) == message


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("enabled", None),
        ("variants.modern.successRate >= `0.95`", None),
        ("variants.modern.errors", None),  # 0 is true in JMESPath
        ("testId == 'brain-api-modern-rollout'", None),
        (
            "variants.modern.successRate > variants.legacy.successRate",
            "condition 'variants.modern.successRate > variants.legacy.successRate' "
            "is not true: it produced false",
        ),
        (
            "variants.modern.samples",
            "condition 'variants.modern.samples' is not true: it produced []",
        ),
        ("variants.canary", "condition 'variants.canary' is not true: it produced null"),
        ("variants.legacy", None),
    ],
)
def test_check_condition(expression: str, message: str | None) -> None:
    assert check_condition(RESULTS, expression) == message


def test_check_condition_shows_the_produced_value() -> None:
    message = check_condition(RESULTS, "variants.legacy.errors == `0`")
    assert message == "condition 'variants.legacy.errors == `0`' is not true: it produced false"

    message = check_condition({"state": "paused"}, "state == 'running' && state")
    assert message is not None and "produced false" in message


@pytest.mark.parametrize(
    "expression",
    ["variants.[", "length(testId, enabled)", "abs(testId)"],
)
def test_check_condition_reports_bad_expressions(expression: str) -> None:
    message = check_condition(RESULTS, expression)

    assert message is not None
    assert message.startswith(f"condition {expression!r} could not be evaluated: ")
    assert "\n" not in message


def test_capture_returns_values_and_errors() -> None:
    values, errors = capture(
        RESULTS,
        {
            "test_id": "testId",
            "modern_rate": "variants.modern.successRate",
            "errors": "variants.modern.errors",
            "missing": "variants.canary.successRate",
            "broken": "variants.[",
        },
    )

    assert values == {
        "test_id": "brain-api-modern-rollout",
        "modern_rate": 0.97,
        "errors": 0,
    }
    assert errors[0] == "capture 'missing': 'variants.canary.successRate' matched nothing (null)"
    assert errors[1].startswith("capture 'broken': 'variants.[' could not be evaluated: ")
    assert len(errors) == 2


def test_capture_of_a_non_json_document_is_an_error_not_a_none() -> None:
    values, errors = capture(None, {"test_id": "testId"})

    assert values == {}
    assert errors == ["capture 'test_id': 'testId' matched nothing (null)"]


def test_capture_keeps_falsy_values() -> None:
    values, errors = capture({"on": False, "n": 0, "s": ""}, {"on": "on", "n": "n", "s": "s"})

    assert (values, errors) == ({"on": False, "n": 0, "s": ""}, [])


@pytest.mark.parametrize(
    ("expression", "doc"),
    [
        ("testId", RESULTS),
        ("variants.modern.successRate", RESULTS),
        ("variants.canary.successRate", RESULTS),
        ("variants.modern.samples", RESULTS),
        ("variants.modern.samples.first", RESULTS),
        ("testId.length", RESULTS),
        ("null", {"null": 1, "true": 2}),
        ("true", {"null": 1, "true": 2}),
        ("a.b", {"a": None}),
        ("a.b", {"a": [{"b": 1}]}),
        ("a", [{"a": 1}]),
        ("a", None),
        ("a", "text"),
    ],
)
def test_a_field_path_answers_what_jmespath_answers(expression: str, doc: Any) -> None:
    assert compile_expression(expression).search(doc) == jmespath.search(expression, doc)


def test_expressions_are_compiled_once() -> None:
    compile_expression.cache_clear()

    for _ in range(3):
        check_condition(RESULTS, "enabled")
    capture(RESULTS, {"flag": "enabled"})

    info = compile_expression.cache_info()
    assert (info.misses, info.hits) == (1, 3)


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.912, "0.912"), ("ok", '"ok"'), (None, "null"), ({"a": [1]}, '{"a": [1]}')],
)
def test_preview(value: Any, text: str) -> None:
    assert preview(value) == text


def test_preview_cuts_long_values() -> None:
    text = preview(list(range(1000)))

    assert len(text) == 200 and text.endswith("…")


def test_a_body_excerpt_is_short_one_line_and_redacted():
    from rollout_cli.drivers.expect import BODY_EXCERPT_LIMIT, body_excerpt
    from rollout_cli.redact import Redactor

    redactor = Redactor(["s3cr3t-value"])
    doc = {"error": "stopped; start a new test", "token": "abc123xyz",
           "echo": "Bearer s3cr3t-value", "padding": "x" * 1000}

    shown = body_excerpt(doc, "", redactor)
    text = body_excerpt(None, "<html>\n  <b>502 Bad Gateway s3cr3t-value</b>\n</html>", redactor)

    assert shown.startswith('{"error": "stopped; start a new test", "token": "***", '
                            '"echo": "Bearer ***"')
    assert len(shown) == BODY_EXCERPT_LIMIT and shown.endswith("…")
    assert text == "<html> <b>502 Bad Gateway ***</b> </html>"

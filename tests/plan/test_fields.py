"""The plan's models behave like frozen, keyword-only dataclasses: what the engine relies on."""

from __future__ import annotations

import pytest

from rollout_cli.plan.fields import dump_model, parse, replace
from rollout_cli.plan.models import Notify, Plan, RetrySpec, Stage


def test_models_are_immutable_and_compare_by_value():
    retry = RetrySpec(attempts=3)

    with pytest.raises(AttributeError, match="immutable"):
        retry.attempts = 5  # type: ignore[misc]
    assert retry == RetrySpec(attempts=3, backoff=1.0) and retry != RetrySpec(attempts=4)
    assert hash(retry) == hash(RetrySpec(attempts=3))
    assert repr(retry) == "RetrySpec(attempts=3, backoff=1.0, max_backoff=30.0, deadline=None)"


def test_replace_changes_only_what_it_names():
    stage = parse(Stage, {"name": "canary", "percentage": 10, "bake": "1h"})

    moved = replace(stage, percentage=20)

    assert (moved.name, moved.percentage, str(moved.bake)) == ("canary", 20, "1h")
    assert stage.percentage == 10


def test_models_are_immutable_all_the_way_down_and_hashable():
    plan = parse(Plan, {"version": 1, "name": "p", "target": {"base_url": "http://h"},
                        "stages": [{"name": "s", "steps": [
                            {"request": "POST /x", "json": {"a": [1, {"b": 2}]}}]}]})
    step = plan.stages[0].steps[0]

    with pytest.raises((TypeError, AttributeError)):
        Notify(webhook="a").on.append("rollback")
    with pytest.raises(TypeError):
        step.json_body["a"] = 1
    with pytest.raises(TypeError):
        plan.target.headers["X"] = "y"
    assert step.json_body == {"a": (1, {"b": 2})}
    assert hash(plan) == hash(parse(Plan, dump_model(plan)))


def test_constructor_refuses_unknown_and_missing_fields():
    with pytest.raises(TypeError, match="no field 'atempts'"):
        RetrySpec(atempts=3)
    with pytest.raises(TypeError, match="needs webhook="):
        Notify()


def test_dump_gives_back_what_a_plan_file_says():
    stage = parse(Stage, {"name": "canary", "percentage": 10, "bake": "2h..4h",
                          "steps": [{"request": "POST /x", "json": {"a": 1}}]})

    dumped = dump_model(stage)

    assert dumped["bake"] == "2h..4h" and dumped["steps"][0]["request"] == "POST /x"
    assert dumped["steps"][0]["json"] == {"a": 1}
    assert parse(Stage, {k: v for k, v in dumped.items() if v is not None}) == stage

"""A provider is one module: a toy one declared here, and registered, loads from a plan,
validates, shows in the schema and is fetched, without a line of rollout_cli changed.
And `rollout simulate` refuses, by name, the metrics its sandbox cannot answer."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import httpx
import jsonschema
import pytest
import yaml

from rollout_cli.drivers.http import HttpDriver
from rollout_cli.drivers.metrics import MetricFetcher
from rollout_cli.errors import PlanError
from rollout_cli.plan import load_text
from rollout_cli.plan.fields import Model, Number, field
from rollout_cli.plan.models import Metric, Plan
from rollout_cli.providers import Provider, register, registered, unregister
from rollout_cli.simulation import simulate
from tests.conftest import PLANS, ROOT
from tests.test_imports import NETWORK, imported, loaded

ENV = {"BRAIN_API_TOKEN": ""}


class StaticQuery(Model):
    value: float = field(Number(), description="What every measurement reads.")


class StaticProvider(Provider):
    """A metric that is always ``value``: nothing to send."""

    key = "static"
    query = StaticQuery
    simulated = True

    def requests(self, plan: Plan, metric: Metric, variables: Mapping[str, Any],
                 now: float) -> tuple[()]:
        return ()

    def templates(self, plan: Plan, metric: Metric) -> list[Any]:
        return []

    def read(self, metric: Metric, outcomes: Sequence[Any]) -> float:
        assert outcomes == []
        return float(metric.query.value)


@pytest.fixture
def static() -> Iterator[StaticProvider]:
    provider = StaticProvider()
    register(provider)
    try:
        yield provider
    finally:
        unregister(provider.key)


PLAN = """\
version: 1
name: toy
target: {base_url: "http://127.0.0.1:9", retry: {attempts: 1}}
metrics:
  ratio:
    description: always fine
    static: {value: 0.99}
    unit: ratio
  rate: {http: {get: /results}, select: rate}
checks:
  fine: {metric: ratio, pass: ">= 0.95"}
stages:
  - {name: only}
rollback:
  - request: POST /off
"""


def test_a_registered_provider_loads_from_a_plan(static: StaticProvider):
    metric = load_text(PLAN, "toy.yaml", {}).plan.metrics["ratio"]

    assert metric.provider is static
    assert metric.query == StaticQuery(value=0.99)
    assert (metric.description, metric.unit) == ("always fine", "ratio")


def test_a_registered_provider_validates_with_located_errors(static: StaticProvider,
                                                            tmp_path: Path, rollout):
    plan = tmp_path / "toy.yaml"
    plan.write_text(PLAN)
    broken = tmp_path / "broken.yaml"
    broken.write_text(PLAN.replace("{value: 0.99}", "{value: high}")
                      .replace("rate: {http:", "rate: {static: {value: 1}, http:")
                      .replace("select: rate}", "select: rate, statc: 1}"))

    assert rollout("validate", str(plan)).code == 0
    result = rollout("validate", str(broken))

    assert result.code == 2
    assert result.err.splitlines()[:2] == [
        f"{broken}:7:21: metrics.ratio.static.value: must be a number, got 'high'",
        f"{broken}:9:67: metrics.rate: unknown key 'statc' (hint: did you mean 'static'?)"]
    both = tmp_path / "both.yaml"
    both.write_text(PLAN.replace("rate: {http:", "rate: {static: {value: 1}, http:"))
    assert rollout("validate", str(both)).err.startswith(
        f"{both}:9:3: metrics.rate: a metric needs exactly one provider: `http:`, "
        "`prometheus:` or `static:`")
    select = tmp_path / "select.yaml"
    select.write_text(PLAN.replace("static: {value: 0.99}", "static: {value: 0.99}\n    select: a"))
    assert f"{select}:5:3: metrics.ratio: `select:` is for http metrics\n" in \
        rollout("validate", str(select)).err


def test_a_registered_provider_is_in_the_schema(static: StaticProvider, rollout):
    schema = json.loads(rollout("schema").out)

    assert schema["$defs"]["Metric"]["properties"]["static"] == {
        "anyOf": [{"$ref": "#/$defs/StaticQuery"}, {"type": "null"}], "default": None}
    assert schema["$defs"]["StaticQuery"]["properties"]["value"]["type"] == "number"
    jsonschema.validate(yaml.safe_load(PLAN), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(PLAN.replace("0.99}", "0.99, valu: 1}")), schema)

    unregister("static")
    try:
        assert "static" not in json.loads(rollout("schema").out)["$defs"]["Metric"]["properties"]
    finally:
        register(static)


def test_a_registered_provider_is_fetched_beside_the_others(static: StaticProvider):
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url))
        return httpx.Response(200, json={"rate": 0.5})

    plan = load_text(PLAN, "toy.yaml", {}).plan
    fetcher = MetricFetcher(plan, HttpDriver(transport=httpx.MockTransport(answer)))

    for now in (1.0, 2.0):
        assert fetcher.fetch(["ratio", "rate"], {}, now) == ({"ratio": 0.99, "rate": 0.5}, {})
    assert fetcher.fetch(["ratio"], {}, 3.0) == ({"ratio": 0.99}, {})

    assert sent == ["http://127.0.0.1:9/results"] * 2


def test_a_taken_key_is_refused():
    class Twin(StaticProvider):
        key = "http"

    class Selecting(StaticProvider):
        beside: ClassVar[Mapping[str, Any]] = {"select": field(Number(), None)}

    class Unit(StaticProvider):
        key = "unit"

    for provider, message in ((Twin(), "the key 'http' is taken by the http provider"),
                              (Selecting(), "the key 'select' is taken by the http provider"),
                              (Unit(), "the key 'unit' is taken by every metric")):
        with pytest.raises(ValueError, match=message):
            register(provider)
    assert set(registered()) == {"http", "prometheus"}


def test_validate_loads_the_providers_without_network_code(tmp_path: Path):
    code, modules = imported(tmp_path, "validate", str(ROOT / "examples" /
                                                       "brain-api-prometheus.yaml"))

    assert code == 0
    assert {"rollout_cli.providers.http", "rollout_cli.providers.prometheus"} <= modules
    assert loaded(modules, NETWORK) == []


def test_simulate_refuses_at_once_the_metrics_it_cannot_answer(rollout):
    example = ROOT / "examples" / "brain-api-prometheus.yaml"

    result = rollout("simulate", str(example))

    assert result.code == 2 and result.out == ""
    lines = result.err.splitlines()
    assert lines[-1] == "8 errors; nothing was run."
    assert lines[0] == (
        f"{example}:32:5: metrics.modern_success_rate: a prometheus metric cannot be "
        "simulated; the in-process sandbox answers http metrics only (hint: rehearse this "
        "plan against `rollout sandbox` over HTTP with a real prometheus source; see the "
        "README's Simulation section)")
    named = [line.split(": ")[1] for line in lines[:-1]]
    assert named == [f"metrics.{name}" for name in (
        "modern_success_rate", "modern_error_rate", "modern_mean_ms", "legacy_mean_ms",
        "errors", "requests",                   # split into parts: named once each
        "modern_heap_mb", "critical_alerts")]   # not ab_test_running, an http metric


def test_simulate_runs_a_plan_whose_unsimulated_metrics_no_check_uses(tmp_path: Path):
    plan = tmp_path / "plan.yaml"
    plan.write_text((PLANS / "brain-api.yaml").read_text().replace(
        "\nmetrics:\n", "\nmetrics:\n  unused: {prometheus: {url: 'http://127.0.0.1:9', "
        "query: up}}\n", 1))

    result = simulate(plan, "healthy", seed=1, env=ENV)

    assert result.phase == "succeeded", result.reason


def test_simulate_asks_each_provider_whether_it_can_be_simulated(static: StaticProvider,
                                                                 tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch):
    plan = tmp_path / "plan.yaml"
    plan.write_text((PLANS / "brain-api.yaml").read_text().replace(
        "\nmetrics:\n", "\nmetrics:\n  steady: {static: {value: 1}}\n", 1).replace(
        "\nchecks:\n", "\nchecks:\n  steady: {metric: steady, pass: '>= 1'}\n", 1).replace(
        "\n  checks: [", "\n  checks: [steady, ", 1))

    assert simulate(plan, "healthy", seed=1, env=ENV).phase == "succeeded"

    monkeypatch.setattr(StaticProvider, "simulated", False)
    with pytest.raises(PlanError, match=r"metrics\.steady: a static metric cannot be "
                                        r"simulated; the in-process sandbox answers http "
                                        r"metrics only"):
        simulate(plan, "healthy", seed=1, env=ENV)

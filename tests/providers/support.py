"""What the provider tests share: a plan around some metrics, answers as data, and what\nreading one gives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rollout_cli.plan import load_text
from rollout_cli.plan.models import Metric, Plan
from rollout_cli.providers import ProviderError

PLAN = """\
version: 1
name: providers
target:
  base_url: http://target:8080/
  timeout: 7s
  headers: {Authorization: "Bearer {{ rollout_id }}", X-Empty: "  "}
metrics:
{metrics}
stages:
  - {name: only}
"""


def plan_with(*metrics: str) -> Plan:
    """A valid plan whose metrics are ``metrics``, each one YAML line: ``name: {...}``."""
    return load_text(PLAN.replace("{metrics}", "\n".join(f"  {m}" for m in metrics)),
                     "p.yaml", {}).plan


@dataclass(frozen=True)
class Answer:
    """What a provider reads of an ``HttpOutcome``: None as status when none came."""

    status: int | None = 200
    json: Any = None
    error: str | None = None


def read(metric: Metric, answer: Answer) -> object:
    """What the metric's provider reads of ``answer``: its value, or the ProviderError it
    raised (compared by message: ``ProviderError("HTTP 503")`` stands for that error)."""
    try:
        return metric.provider.read(metric, [answer])  # type: ignore[list-item]
    except ProviderError as error:
        return error


def same(found: object, expected: object) -> bool:
    if isinstance(expected, ProviderError):
        return isinstance(found, ProviderError) and str(found) == str(expected)
    return found == expected

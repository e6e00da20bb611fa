"""``{{ rate_window }}``: the analysis interval, at least 4 scrape intervals, or as given."""

from __future__ import annotations

import pytest

from rollout_cli.plan import load_text
from rollout_cli.plan.calls import variables_for

PLAN = """\
version: 1
name: rates
target: {{base_url: "http://127.0.0.1:9"}}
{extra}
metrics:
  errors:
    prometheus:
      url: http://127.0.0.1:9090
      query: sum(rate(x[{{{{ rate_window }}}}]))
checks:
  few: {{metric: errors, pass: "< 1"}}
analysis: {{interval: {interval}, checks: [few]}}
stages:
  - {{name: one, bake: 5m, analysis: {{checks: [few]}}}}
"""


@pytest.mark.parametrize(("interval", "extra", "expected"), [
    ("5m", "", "5m"),                          # the interval covers 4 one-minute scrapes
    ("30s", "", "4m"),                         # at least 4 scrapes of Prometheus's default 1m
    ("30s", "scrape_interval: 15s", "1m"),
    ("30s", "scrape_interval: 5s", "30s"),
    ("5m", "rate_window: 2m", "2m"),           # as given
])
def test_rate_window(interval: str, extra: str, expected: str):
    plan = load_text(PLAN.format(interval=interval, extra=extra), "p.yaml", {}).plan

    variables = variables_for(plan, plan.stages[0], "r", {})

    assert variables["rate_window"] == expected

"""`rollout validate --online` against a real Prometheus: a query it cannot parse is an
error at the query's line (exit 2), a good one passes, an unreachable source warns."""

from __future__ import annotations

from pathlib import Path

from tests.sandbox.conftest import free_port, start_prometheus

PLAN = """\
version: 1
name: online
target: {{base_url: "http://127.0.0.1:9"}}
traffic: {{request: POST /weights, json: {{modern: "{{{{ percentage }}}}"}}}}
metrics:
  good:
    prometheus:
      url: {url}
      query: sum(rate(brain_requests_total{{stage="{{{{ stage }}}}"}}[{{{{ rate_window }}}}]))
  bad:
    prometheus:
      url: {url}
      query: sum(rate(brain_requests_total[5m])
checks:
  ok: {{metric: good, pass: "< 1"}}
  also: {{metric: bad, pass: "< 1"}}
analysis: {{interval: 1m, checks: [ok, also]}}
stages:
  - {{name: one, percentage: 10, bake: 5m}}
rollback:
  - request: POST /off
"""


def test_a_query_prometheus_cannot_parse_is_an_error_at_its_line(rollout, tmp_path: Path):
    prometheus = start_prometheus([f"127.0.0.1:{free_port()}"], tmp_path)
    try:
        plan = tmp_path / "plan.yaml"
        plan.write_text(PLAN.format(url=prometheus.url))
        offline = rollout("validate", str(plan))
        online = rollout("validate", "--online", str(plan))
    finally:
        prometheus.stop()

    assert offline.code == 0                     # the file itself is fine
    assert online.code == 2
    assert f"{plan}:13:14: metrics.bad: prometheus refuses the query: " in online.err
    assert "unclosed left parenthesis" in online.err
    assert "metrics.good" not in online.err


def test_an_unreachable_source_is_a_warning(rollout, tmp_path: Path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.format(url=f"http://127.0.0.1:{free_port()}"))

    result = rollout("validate", "--online", str(plan))

    assert result.code == 0
    assert f"{plan}:7:5: warning: metrics.good: could not ask prometheus whether it reads " \
           "the query" in result.err + result.out

"""A real Prometheus alert rule, end to end: Prometheus scrapes an error ratio, its rule
fires, it sends the alert to a real Alertmanager (group_wait 1 s), whose webhook reaches
the agent, which rolls the rollout back.

The error ratio comes from a tiny exporter on loopback that the test controls, so the
test knows the instant the rule's condition became true; the sandbox holds the first
rollback request, so the test knows the instant it arrived.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.agent.conftest import Exporter, agent_plan, wait_for
from tests.rollouts.conftest import EMERGENCY_SEQUENCE, Operator, Target, held_target  # noqa: F401
from tests.sandbox.conftest import start_prometheus

LABELS = {"alertname": "BrainApiErrors", "service": "brain-api", "severity": "critical"}
RULES = """\
groups:
  - name: brain-api
    rules:
      - alert: BrainApiErrors
        expr: max(brain_api_error_ratio) > 0.05
        labels: {service: brain-api, severity: critical}
        annotations: {summary: brain-api errors above 5%}
"""
# Scrape (1 s) + rule evaluation (1 s) + Alertmanager's group_wait (1 s) + the agent: a
# generous bound; the figure is printed (and in the README).
BOUND = 10.0


def _rule_evaluated(url: str) -> bool:
    """Prometheus has evaluated the rule at least once since the ratio was scraped (0):
    it is loaded, healthy and quiet."""
    groups = httpx.get(f"{url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    return bool(rules) and all(rule["health"] == "ok" and rule["state"] == "inactive"
                               and not rule["lastEvaluation"].startswith("0001")
                               for rule in rules)


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    running = Exporter()
    yield running
    running.close()


def test_a_real_prometheus_rule_firing_rolls_the_rollout_back(
        operator: Operator, held_target: Target, start_agent, alertmanager, exporter,  # noqa: F811
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    target = held_target
    plan = agent_plan(tmp_path / "plan.yaml")   # the demo's alerts: {service: brain-api}
    assert operator("start", str(plan)).code == 3             # at canary-10's manual gate
    agent = start_agent("--name", "prom")
    wait_for(lambda: operator.status()["driver"], 10, "driven by the agent")
    manager = alertmanager(agent.url + "/alertmanager")
    (tmp_path / "prom").mkdir()
    prometheus = start_prometheus([exporter.address], tmp_path / "prom", rules=RULES,
                                  alertmanager=urlsplit(manager.url).netloc)
    try:
        wait_for(lambda: prometheus.query("brain_api_error_ratio"), 30, "scraped", every=0.2)
        wait_for(lambda: _rule_evaluated(prometheus.url), 30, "the rule evaluated", every=0.2)
        assert manager.alerts() == [] and operator.status()["phase"] == "waiting-gate"
        before = len(target.changes())
        assert target.hold is not None
        target.hold.arm(EMERGENCY_SEQUENCE[0][1])

        exporter.ratio = 0.2                                  # the condition is true now
        became_true = time.monotonic()
        target.hold.wait_arrived(timeout=BOUND + 20)
        took = time.monotonic() - became_true
        target.hold.release()
        with capsys.disabled():     # the `rollout` fixture captures; the figure is for people
            print(f"\nrule condition true -> first rollback request at the target: "
                  f"{took:.2f} s")
        assert took < BOUND

        events = wait_for(lambda: (lambda e: e if any(x["type"] == "rolled-back" for x in e)
                                   else None)(operator.events()), 30, "rolled back")
        [alert] = [a for a in manager.alerts() if a["labels"]["alertname"] == "BrainApiErrors"]
        started = next(e for e in events if e["type"] == "rollback-started")
        assert alert["labels"] == LABELS
        assert started["alert"] == {"fingerprint": alert["fingerprint"], "labels": LABELS,
                                    "status": "firing"}
        assert started["reason"] == (f"alert BrainApiErrors fired (fingerprint "
                                     f"{alert['fingerprint']})")
        assert target.changes()[before:] == EMERGENCY_SEQUENCE
        assert operator.status()["phase"] == "rolled-back"
    finally:
        prometheus.stop()
    code, log = agent.stop()
    assert code == 0, log

"""Pushed alerts: a real Alertmanager routes an alert to the agent's webhook and the
rollout rolls back within a second of the webhook; duplicates, resolved alerts, bad
bodies and missing tokens, posted straight to the agent, change nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.agent.conftest import agent_plan, wait_for
from tests.rollouts.conftest import EMERGENCY_SEQUENCE, ON_EVERY_STORE, Operator, Target

TOKEN = "agent-token-5f2c9e"
LABELS = {"alertname": "BrainApiErrors", "service": "brain-api", "severity": "critical"}


def _payload(status: str, fingerprint: str, labels: dict[str, str] | None = None
             ) -> dict[str, Any]:
    """Alertmanager's webhook body (version 4) with one alert."""
    labels = labels or LABELS
    return {"version": "4", "groupKey": "{}:{alertname=\"BrainApiErrors\"}", "status": status,
            "receiver": "agent", "groupLabels": {"alertname": labels.get("alertname", "")},
            "commonLabels": labels, "commonAnnotations": {}, "externalURL": "http://am",
            "truncatedAlerts": 0,
            "alerts": [{"status": status, "labels": labels,
                        "annotations": {"summary": "errors above 5%"},
                        "startsAt": "2026-12-06T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "http://prometheus/graph", "fingerprint": fingerprint}]}


def _driven(operator: Operator) -> dict[str, Any]:
    return wait_for(lambda: operator.status()["driver"], 10, "driven by the agent")


def _journal_has(operator: Operator, kind: str) -> list[dict[str, Any]] | None:
    events = operator.events()
    return events if any(e["type"] == kind for e in events) else None


@ON_EVERY_STORE
def test_an_alert_routed_by_a_real_alertmanager_rolls_the_rollout_back(
        operator: Operator, target: Target, start_agent, alertmanager, tmp_path: Path,
        monkeypatch):
    plan = agent_plan(tmp_path / "plan.yaml")    # the demo's alerts: {service: brain-api}
    assert operator("start", str(plan)).code == 3             # at canary-10's manual gate
    monkeypatch.setenv("AGENT_TOKEN", TOKEN)
    agent = start_agent("--token-env", "AGENT_TOKEN")
    _driven(operator)
    manager = alertmanager(agent.url + "/alertmanager", token=TOKEN)
    before = len(target.changes())

    pushed = time.time()
    manager.push(LABELS)
    events = wait_for(lambda: _journal_has(operator, "rolled-back"), 30, "rolled back")

    fingerprint = manager.alerts()[0]["fingerprint"]
    started = next(e for e in events if e["type"] == "rollback-started")
    assert started["alert"] == {"fingerprint": fingerprint, "labels": LABELS,
                                "status": "firing"}
    assert started["reason"] == f"alert BrainApiErrors fired (fingerprint {fingerprint})"
    assert target.changes()[before:] == EMERGENCY_SEQUENCE
    first_call = next(e for e in events if e["type"] == "intent" and e["kind"] == "rollback")
    # Alertmanager holds a new group for group_wait (1 s) before it posts the webhook.
    assert first_call["time"] - pushed < 1.0 + 1.0
    code, log = agent.stop()
    assert code == 0 and TOKEN not in log
    assert f"alert BrainApiErrors fired (fingerprint {fingerprint}): rollback" in log


def test_duplicates_resolved_alerts_and_other_labels_change_nothing(
        operator: Operator, target: Target, start_agent, tmp_path: Path):
    plan = agent_plan(tmp_path / "plan.yaml")
    assert operator("start", str(plan)).code == 3
    agent = start_agent()
    _driven(operator)
    before = len(target.changes())

    resolved = agent.post("/alertmanager", json=_payload("resolved", "aa11"))
    other = agent.post("/alertmanager", json=_payload(
        "firing", "bb22", {"alertname": "DiskFull", "service": "billing"}))
    assert resolved.json() == {"started": [], "duplicates": [], "unmatched": 0, "resolved": 1}
    assert other.json()["unmatched"] == 1 and other.json()["started"] == []
    assert operator.status()["phase"] == "waiting-gate"

    first = agent.post("/alertmanager", json=_payload("firing", "cc33"))
    again = agent.post("/alertmanager", json=_payload("firing", "cc33"))
    rollout_id = operator.status()["rollout"]
    row = {"rollout": rollout_id, "action": "rollback", "fingerprint": "cc33",
           "alert": "BrainApiErrors"}
    assert first.json()["started"] == [row]
    assert again.json()["duplicates"] == [row] and again.json()["started"] == []
    wait_for(lambda: _journal_has(operator, "rolled-back"), 30, "rolled back")
    assert target.changes()[before:] == EMERGENCY_SEQUENCE           # once
    assert [e["alert"]["fingerprint"] for e in operator.events() if e.get("alert")] == ["cc33"]


def test_a_pause_alert_pauses_and_the_agent_waits_for_a_person(
        operator: Operator, target: Target, start_agent, tmp_path: Path):
    plan = agent_plan(tmp_path / "plan.yaml", alerts=(
        "  - match: {severity: page}\n    action: pause\n"))
    assert operator("start", str(plan)).code == 3
    agent = start_agent()
    _driven(operator)
    answer = agent.post("/alertmanager", json=_payload(
        "firing", "dd44", {"alertname": "SlowCanary", "severity": "page"}))
    assert answer.json()["started"][0]["action"] == "pause"
    wait_for(lambda: operator.status()["phase"] == "paused", 10, "paused")
    status = operator.status()
    assert status["pause_reason"] == "alert SlowCanary fired (fingerprint dd44)"
    paused = next(e for e in operator.events() if e["type"] == "paused")
    assert paused["alert"]["labels"] == {"alertname": "SlowCanary", "severity": "page"}
    assert status["driver"]["pid"] == agent.process.pid       # still driving, waiting


def test_bad_bodies_and_missing_tokens_are_refused(
        operator: Operator, target: Target, start_agent, tmp_path: Path, monkeypatch):
    plan = agent_plan(tmp_path / "plan.yaml")
    assert operator("start", str(plan)).code == 3
    monkeypatch.setenv("AGENT_TOKEN", TOKEN)
    agent = start_agent("--token-env", "AGENT_TOKEN")
    _driven(operator)
    good = {"Authorization": f"Bearer {TOKEN}"}

    missing = agent.post("/alertmanager", json=_payload("firing", "ee55"))
    wrong = agent.post("/alertmanager", json=_payload("firing", "ee55"),
                       headers={"Authorization": "Bearer guess"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert TOKEN not in missing.text + wrong.text

    not_json = agent.post("/alertmanager", content=b"{nope", headers=good)
    assert not_json.status_code == 400
    assert not_json.json()["error"].startswith("the body is not JSON")
    no_fingerprint = _payload("firing", "ff66")
    del no_fingerprint["alerts"][0]["fingerprint"]
    refused = agent.post("/alertmanager", json=no_fingerprint, headers=good)
    assert refused.status_code == 400
    assert refused.json() == {"error": "alerts[0].fingerprint: must be a non-empty string"}
    assert agent.get("/alertmanager").status_code == 405
    assert agent.get("/healthz").text == "ok\n"
    assert operator.status()["phase"] == "waiting-gate"          # none of it acted
    assert len([e for e in operator.events() if e["type"] == "rollback-started"]) == 0

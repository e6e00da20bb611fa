"""Notifications from real rollouts: `rollout run` of the demo plan against the sandbox
posts to the plan's Slack webhook (SLACK_WEBHOOK_URL, pointed at a local receiver), and
`rollout simulate`, a rehearsal, posts nothing."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

import pytest

from rollout_cli import notify
from rollout_cli.plan import load_plan
from rollout_cli.simulation import simulate
from tests.conftest import PLANS
from tests.notify.conftest import Receiver
from tests.rollouts.conftest import DEMO_PLAN, Operator, Target

SECRET_PATH = "/services/T0/B0/secret-token-1234"


def _expected(operator: Operator, plan: Path) -> list[str]:
    """The notifications the journal's events call for under the plan's `on:` list."""
    wanted = load_plan(plan, {"SLACK_WEBHOOK_URL": "http://x"}).plan.notify[0].events
    names = [notify.NOTIFIED.get(event["type"]) for event in operator.events()]
    return [name for name in names if name in wanted]


def _nowhere_in_state(operator: Operator, secret: str) -> None:
    for path in operator.state_dir.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path
    assert not any(secret in output for output in operator.outputs)


def test_run_posts_started_to_succeeded_in_order_and_never_shows_the_url(
        operator: Operator, target: Target, fast_plan: Path, receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch):
    webhook = receiver.webhook(SECRET_PATH)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", webhook)

    result = operator("run", str(fast_plan), "--auto-approve")

    assert result.code == 0, result.err
    texts = [body["text"] for body in receiver.bodies()]
    sent = [text.split()[2].rstrip(":") for text in texts]  # ":emoji: PLAN EVENT[:] ..."
    assert sent == _expected(operator, fast_plan)
    assert (sent[0], sent[-1]) == ("started", "succeeded")
    assert all(request.path == SECRET_PATH for request in receiver.requests)
    assert all("brain-api-demo" in text and operator.rollout_ids()[0] in text
               for text in texts)
    assert not any(e["type"] == "note" for e in operator.events())
    _nowhere_in_state(operator, webhook)
    _nowhere_in_state(operator, SECRET_PATH)


def test_a_dead_webhook_leaves_the_run_alone_and_journals_masked_notes(
        operator: Operator, target: Target, fast_plan: Path, monkeypatch: pytest.MonkeyPatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    webhook = f"http://127.0.0.1:{port}{SECRET_PATH}"
    monkeypatch.setenv("SLACK_WEBHOOK_URL", webhook)
    # The retries still happen, unslept.
    monkeypatch.setattr(notify, "POLICY", replace(notify.POLICY, backoff=0.0))

    result = operator("run", str(fast_plan), "--auto-approve")

    assert result.code == 0, result.err
    notes = [e["text"] for e in operator.events() if e["type"] == "note"]
    assert notes == [f"notification failed: {name} to notify[0] webhook: connection refused "
                     "or unreachable (after 3 attempts)"
                     for name in _expected(operator, fast_plan)]
    assert operator.status()["phase"] == "succeeded"
    _nowhere_in_state(operator, webhook)
    _nowhere_in_state(operator, SECRET_PATH)


def test_simulate_is_a_rehearsal_and_posts_nothing(receiver: Receiver):
    env = {"SLACK_WEBHOOK_URL": receiver.webhook(SECRET_PATH), "BRAIN_API_URL": "http://sandbox"}

    result = simulate(PLANS / DEMO_PLAN.name, "healthy", seed=7, env=env)

    # Its journal had notified events (stages started, a pause): none went out.
    assert {"stage-started", "paused"} <= {entry["action"] for entry in result.trace}
    assert receiver.requests == []


def test_operator_commands_notify_too_gate_pause_and_rollback(
        operator: Operator, target: Target, fast_plan: Path, receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch):
    webhook = receiver.webhook(SECRET_PATH)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", webhook)

    started = operator("start", str(fast_plan))  # runs up to the first manual gate
    paused = operator("pause", "--reason", "looking at dashboards")
    operator("rollback", "--yes", "--reason", "errors in canary")

    assert (started.code, paused.code) == (3, 3), started.err + paused.err
    assert operator.status()["phase"] == "rolled-back"
    sent = [body["text"].split()[2].rstrip(":") for body in receiver.bodies()]
    assert sent == _expected(operator, fast_plan)
    assert sent[0] == "started" and {"gate-waiting", "paused"} <= set(sent)
    assert sent[-2:] == ["rollback-started", "rollback-completed"]
    assert any(":rotating_light:" in b["text"] and "errors in canary" in b["text"]
               for b in receiver.bodies())
    _nowhere_in_state(operator, webhook)

"""Notifier: payloads, the `on` filter, retries and failures against a real local receiver.

The worker thread is flushed with ``close()`` (a join with a timeout); retries sleep
through an injected recorder, so no test waits out a backoff.
"""

from __future__ import annotations

import socket
import time
from datetime import datetime
from typing import Any

import pytest

from rollout_cli.engine import RolloutState
from rollout_cli.engine.events import from_json
from rollout_cli.notify import POLICY, Notifier
from rollout_cli.plan.models import Notify
from rollout_cli.redact import Redactor
from tests.notify.conftest import Receiver

ROLLOUT = "r-20261128-abcd"
PLAN = "brain-api-modern-rollout"
STAGES = ["baseline", "canary-10", "canary-50", "full"]
AT = 1_800_000_000.0


def _notifier(*entries: Notify, sleeps: list[float] | None = None) -> Notifier:
    redactor = Redactor([entry.webhook for entry in entries])
    record = sleeps.append if sleeps is not None else (lambda seconds: None)
    return Notifier(entries, redactor, ROLLOUT, PLAN, stages=STAGES, sleep=record)


def _state(**values: Any) -> RolloutState:
    return RolloutState(id=ROLLOUT, plan=PLAN, **values)


def _send(notifier: Notifier, *events: tuple[dict[str, Any], RolloutState]) -> None:
    for event, state in events:
        notifier(from_json({**event, "time": AT}), state)
    notifier.close(timeout=10)


STARTED = ({"type": "created", "plan": PLAN}, _state(phase="running"))
PAUSED = ({"type": "paused", "reason": "bake of canary-50 interrupted"},
          _state(phase="paused", stage=2, stage_started=True, percentage=50.0))
ROLLBACK = ({"type": "rollback-started", "reason": "error rate 7% > 5%", "who": "analysis"},
            _state(phase="rolling-back", stage=2, stage_started=True, percentage=50.0))
SUCCEEDED = ({"type": "succeeded", "reason": "every stage completed"},
             _state(phase="succeeded", stage=3, stage_started=True, percentage=100.0))


def test_json_payloads_carry_event_rollout_plan_stage_percentage_reason_time(
        receiver: Receiver):
    notifier = _notifier(Notify(webhook=receiver.webhook(), format="json"))

    _send(notifier, STARTED, PAUSED, ROLLBACK, SUCCEEDED)

    bodies = receiver.bodies()
    assert [b["event"] for b in bodies] == ["started", "paused", "rollback-started", "succeeded"]
    assert bodies[2] == {"event": "rollback-started", "rollout": ROLLOUT, "plan": PLAN,
                         "stage": "canary-50", "percentage": 50.0,
                         "reason": "error rate 7% > 5%", "time": bodies[2]["time"]}
    assert datetime.fromisoformat(bodies[2]["time"]).timestamp() == AT
    assert (bodies[0]["stage"], bodies[0]["reason"]) == (None, None)
    assert bodies[1]["reason"] == "bake of canary-50 interrupted"
    assert (bodies[3]["stage"], bodies[3]["percentage"]) == ("full", 100.0)
    assert {r.method for r in receiver.requests} == {"POST"}
    assert receiver.requests[0].path == "/services/T0/B0/secret-token-1234"
    headers = {k.lower(): v for k, v in receiver.requests[0].headers.items()}
    assert headers["content-type"] == "application/json"
    assert notifier.drain_failures() == []


def test_slack_payloads_are_one_human_line(receiver: Receiver):
    notifier = _notifier(Notify(webhook=receiver.webhook(), format="slack"))

    _send(notifier, STARTED, PAUSED, ROLLBACK, SUCCEEDED)

    bodies = receiver.bodies()
    assert all(list(body) == ["text"] and "\n" not in body["text"] for body in bodies)
    texts = [body["text"] for body in bodies]
    assert texts[0] == f":rocket: {PLAN} started (rollout {ROLLOUT})"
    assert texts[1].startswith(f":double_vertical_bar: {PLAN} paused at canary-50 (50%): bake")
    assert texts[2] == (f":rotating_light: {PLAN} rollback-started at canary-50 (50%): "
                        f"error rate 7% > 5% (rollout {ROLLOUT})")
    assert texts[3].startswith(f":tada: {PLAN} succeeded at full (100%)")


def test_on_filters_events_and_rollback_stands_for_all_three(receiver: Receiver):
    notifier = _notifier(Notify(webhook=receiver.webhook(), on=["started", "rollback"]))
    completed = ({"type": "rolled-back", "reason": "x"}, _state(phase="rolled-back"))
    failed = ({"type": "rollback-failed", "reason": "y"}, _state(phase="rollback-failed"))
    stage = ({"type": "stage-started", "stage": 1, "name": "canary-10", "percentage": 10},
             _state(stage=1, stage_started=True))

    _send(notifier, STARTED, stage, PAUSED, ROLLBACK, completed, failed, SUCCEEDED)

    assert [b["event"] for b in receiver.bodies()] == [
        "started", "rollback-started", "rollback-completed", "rollback-failed"]


def test_events_without_a_notification_are_not_sent(receiver: Receiver):
    notifier = _notifier(Notify(webhook=receiver.webhook()))

    _send(notifier, ({"type": "intent", "call_id": "c1", "kind": "step"}, _state()),
          ({"type": "note", "text": "hello"}, _state()), ({"type": "measured"}, _state()))

    assert receiver.requests == []


def test_an_empty_webhook_is_off(receiver: Receiver):
    notifier = _notifier(Notify(webhook=""), Notify(webhook=receiver.webhook(), on=["failed"]))

    _send(notifier, STARTED, PAUSED, ROLLBACK, SUCCEEDED)

    assert receiver.requests == []


def test_each_enabled_webhook_gets_its_own_format(receiver: Receiver):
    notifier = _notifier(Notify(webhook=receiver.webhook("/json"), format="json"),
                         Notify(webhook=receiver.webhook("/slack"), format="slack"))

    _send(notifier, STARTED)

    by_path = {r.path: r.body for r in receiver.requests}
    assert sorted(by_path) == ["/json", "/slack"]
    assert b'"text"' in by_path["/slack"] and b'"event"' in by_path["/json"]


def test_a_receiver_failing_twice_then_answering_gets_three_tries(receiver: Receiver):
    receiver.queue(500).queue(429)
    sleeps: list[float] = []
    notifier = _notifier(Notify(webhook=receiver.webhook()), sleeps=sleeps)

    _send(notifier, STARTED)

    assert receiver.count("POST") == 3
    assert [b["event"] for b in receiver.bodies()] == ["started"] * 3
    assert sleeps == [0.5, 1.0]
    assert notifier.drain_failures() == []


def test_a_receiver_that_keeps_failing_yields_one_redacted_failure(receiver: Receiver):
    receiver.answer_always(503)
    webhook = receiver.webhook()
    notifier = _notifier(Notify(webhook=webhook), sleeps=[])

    _send(notifier, STARTED)

    assert receiver.count() == POLICY.attempts == 3
    failures = notifier.drain_failures()
    assert failures == ["started to notify[0] webhook: HTTP 503 (after 3 attempts)"]
    assert notifier.drain_failures() == []


@pytest.mark.parametrize("status", [404, 501])
def test_a_client_error_or_an_unknown_method_is_not_retried(receiver: Receiver, status: int):
    receiver.answer_always(status)
    notifier = _notifier(Notify(webhook=receiver.webhook()), sleeps=[])

    _send(notifier, STARTED)

    assert receiver.count() == 1
    assert notifier.drain_failures() == [f"started to notify[0] webhook: HTTP {status}"]


def test_a_receiver_asking_to_retry_later_waits_at_most_a_second(receiver: Receiver):
    receiver.queue(429, headers={"Retry-After": "30"})
    sleeps: list[float] = []
    notifier = _notifier(Notify(webhook=receiver.webhook()), sleeps=sleeps)

    _send(notifier, STARTED)

    assert (receiver.count(), sleeps, notifier.drain_failures()) == (2, [1.0], [])


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_dead_receiver_never_blocks_or_fails_the_caller():
    webhook = f"http://127.0.0.1:{_closed_port()}/services/T0/B0/secret-token-1234"
    sleeps: list[float] = []
    notifier = _notifier(Notify(webhook=webhook, timeout=1.0), sleeps=sleeps)

    began = time.monotonic()
    for event, state in (STARTED, PAUSED, ROLLBACK, SUCCEEDED):
        assert notifier(from_json({**event, "time": AT}), state)  # queued, not sent: returns at once
    queued = time.monotonic() - began
    notifier.close()
    closed = time.monotonic() - began

    assert queued < 0.5
    assert notifier.budget() == 3 * 1.0 + 0.5 + 1.0   # every try timing out, and the waits
    assert closed < notifier.budget() + 1.0
    failures = notifier.drain_failures()
    assert len(failures) == 4
    assert failures[0] == ("started to notify[0] webhook: connection refused or unreachable "
                           "(after 3 attempts)")
    assert not any("127.0.0.1" in f or "secret-token" in f for f in failures)
    assert sleeps == [0.5, 1.0] * 4


def test_close_gives_up_after_its_timeout_and_counts_the_unsent(receiver: Receiver):
    receiver.answer_always(200, hang=5.0)
    notifier = _notifier(Notify(webhook=receiver.webhook(), timeout=5.0))
    notifier(from_json({**STARTED[0], "time": AT}), STARTED[1])

    began = time.monotonic()
    notifier.close(timeout=0.2)

    assert time.monotonic() - began < 1.0
    assert notifier.drain_failures() == ["1 notification(s) still unsent when the command ended"]


def test_nothing_is_queued_after_close(receiver: Receiver):
    notifier = _notifier(Notify(webhook=receiver.webhook()))
    notifier.close()

    assert notifier(from_json({**STARTED[0], "time": AT}), STARTED[1]) == []
    assert receiver.requests == []

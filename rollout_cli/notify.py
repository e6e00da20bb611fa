"""Plan notifications: journaled events, posted to the plan's `notify:` webhooks.

A notification is a courtesy, never part of the rollout: posts go out from one daemon
thread through the HTTP driver with a policy of their own, every error is caught, and a
failed delivery becomes a message (webhook URL masked: it is a secret) that the caller
collects with ``drain_failures()`` and journals.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from rollout_cli.drivers.http import HttpDriver, HttpOutcome, HttpRequest, RetryPolicy
from rollout_cli.redact import MASK, Redactor

if TYPE_CHECKING:
    from rollout_cli.engine.events import Event

# 0.5 s then 1 s between the 3 tries. A post is idempotent here: a message shown twice is
# better than one lost, so timeouts and 500s are retried too.
POLICY = RetryPolicy(attempts=3, backoff=0.5, max_backoff=1.0, jitter=False)
# The driver's names for transport failures, as notes say them.
_FAILURES = {"connect error": "connection refused or unreachable",
             "connect timeout": "timed out", "read timeout": "timed out",
             "write timeout": "timed out", "connection pool timeout": "timed out",
             "read error": "connection dropped", "write error": "connection dropped"}
# Journal event type -> notification name; event types not listed are not notified.
NOTIFIED = {
    "created": "started",
    "stage-started": "stage-started",
    "stage-completed": "stage-completed",
    "gate-waiting": "gate-waiting",
    "paused": "paused",
    "rollback-started": "rollback-started",
    "rolled-back": "rollback-completed",
    "rollback-failed": "rollback-failed",
    "succeeded": "succeeded",
    "failed": "failed",
}
EMOJI = {
    "started": ":rocket:",
    "stage-started": ":arrow_forward:",
    "stage-completed": ":white_check_mark:",
    "gate-waiting": ":raised_hand:",
    "paused": ":double_vertical_bar:",
    "rollback-started": ":rotating_light:",
    "rollback-completed": ":leftwards_arrow_with_hook:",
    "rollback-failed": ":fire:",
    "succeeded": ":tada:",
    "failed": ":x:",
}


@dataclass(frozen=True)
class _Delivery:
    index: int          # position in the plan's notify list: names the webhook in messages
    webhook: str
    timeout: float
    name: str
    body: dict[str, Any]


class Notifier:
    """Queues a post per enabled webhook for each notified event; one worker sends them.

    ``notify`` is the plan's `notify:` list (an empty webhook turns its entry off);
    ``stages`` names stage indices for events that carry only the state's stage.
    """

    def __init__(self, notify: Sequence[Any], redactor: Redactor, rollout_id: str,
                 plan_name: str, *, stages: Sequence[str] = (),
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._entries = [(i, entry) for i, entry in enumerate(notify) if entry.webhook]
        self._redactor = redactor
        self._rollout_id = rollout_id
        self._plan_name = plan_name
        self._stages = list(stages)
        self._transport = transport
        self._sleep = sleep
        self._queue: queue.Queue[_Delivery | None] = queue.Queue()
        self._failures: list[str] = []
        self._lock = threading.Lock()
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._closed = False

    def __call__(self, event: Event, state: Any) -> list[dict[str, Any]]:
        """Queue ``event``'s notifications; returns their bodies. Never raises."""
        try:
            return self._enqueue(event, state)
        except Exception as problem:  # a notification must never fail the rollout
            self._fail(f"{event.TYPE}: not sent: {type(problem).__name__}")
            return []

    def _enqueue(self, event: Event, state: Any) -> list[dict[str, Any]]:
        name = NOTIFIED.get(event.TYPE)
        if name is None or self._closed:
            return []
        targets = [(i, entry) for i, entry in self._entries if name in entry.events]
        if not targets:
            return []
        fields = self._redactor.data(self._fields(name, event, state))
        bodies = []
        for index, entry in targets:
            body = slack_body(fields) if entry.format == "slack" else fields
            self._put(_Delivery(index, entry.webhook, float(entry.timeout), name, body))
            bodies.append(body)
        return bodies

    def _fields(self, name: str, event: Event, state: Any) -> dict[str, Any]:
        stage = getattr(event, "name", None)
        index = getattr(state, "stage", None)
        if stage is None and getattr(state, "stage_started", False) and (
                isinstance(index, int) and index < len(self._stages)):
            stage = self._stages[index]
        return {"event": name, "rollout": self._rollout_id, "plan": self._plan_name,
                "stage": stage, "percentage": getattr(state, "percentage", None),
                "reason": getattr(event, "reason", None),
                "time": datetime.fromtimestamp(event.time, UTC).isoformat()}

    def _put(self, delivery: _Delivery) -> None:
        with self._lock:
            self._pending += 1
            if self._thread is None:
                # Started on first use: a plan without webhooks costs no thread.
                self._thread = threading.Thread(target=self._work, name="rollout-notify",
                                                daemon=True)
                self._thread.start()
        self._queue.put(delivery)

    def _work(self) -> None:
        with HttpDriver(redactor=self._redactor, transport=self._transport,
                        sleep=self._sleep) as http:
            while (delivery := self._queue.get()) is not None:
                try:
                    self._deliver(http, delivery)
                except Exception as problem:
                    # Only the kind: an exception's text may quote the URL in any spelling.
                    self._fail(self._message(delivery, type(problem).__name__))
                finally:
                    with self._lock:
                        self._pending -= 1

    def _deliver(self, http: HttpDriver, delivery: _Delivery) -> None:
        request = HttpRequest("POST", delivery.webhook, json=delivery.body,
                              timeout=delivery.timeout, idempotent=True)
        problem = _problem(http.send(request, POLICY))
        if problem is not None:
            self._fail(self._message(delivery, problem))

    def _message(self, delivery: _Delivery, reason: str) -> str:
        text = f"{delivery.name} to notify[{delivery.index}] webhook: {reason}"
        # The URL is masked even if the redactor was not told about it.
        return self._redactor.text(text.replace(delivery.webhook, MASK))

    def _fail(self, message: str) -> None:
        with self._lock:
            self._failures.append(message)

    def drain_failures(self) -> list[str]:
        """The failure messages since the last drain (URLs masked), oldest first."""
        with self._lock:
            failures, self._failures = self._failures, []
        return failures

    def close(self, timeout: float | None = None) -> None:
        """Send what is queued, waiting at most ``timeout`` seconds (default: one delivery's
        worst case); what is still unsent then is reported as a failure."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is None:
            return
        self._queue.put(None)
        thread.join(self.budget() if timeout is None else timeout)
        with self._lock:
            unsent = self._pending
        if unsent:
            self._fail(f"{unsent} notification(s) still unsent when the command ended")

    def budget(self) -> float:
        """The longest one delivery can take: every attempt timing out, plus the backoffs."""
        timeout = max((float(entry.timeout) for _, entry in self._entries), default=0.0)
        return POLICY.longest(timeout)


def _problem(outcome: HttpOutcome) -> str | None:
    """None for a delivered post; else what went wrong, naming only the kind of a transport
    failure (its text may quote the URL)."""
    if outcome.status is None:
        assert outcome.error_kind is not None   # set whenever no answer came
        what = _FAILURES.get(outcome.error_kind, outcome.error_kind)
    elif outcome.status < 300:
        return None
    else:
        what = f"HTTP {outcome.status}"
    return what if outcome.attempts == 1 else f"{what} (after {outcome.attempts} attempts)"


def slack_body(fields: dict[str, Any]) -> dict[str, str]:
    """A Slack incoming-webhook message: one line a person reads at a glance."""
    name = fields["event"]
    where = ""
    if fields.get("stage"):
        where = f" at {fields['stage']}"
        if fields.get("percentage") is not None:
            where += f" ({fields['percentage']:g}%)"
    reason = f": {fields['reason']}" if fields.get("reason") else ""
    return {"text": f"{EMOJI.get(name, '')} {fields['plan']} {name}{where}{reason} "
                    f"(rollout {fields['rollout']})".lstrip()}

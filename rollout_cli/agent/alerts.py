"""Pushed alerts: Alertmanager's webhook payload, matched against the plans' `alerts:`.

A firing alert whose labels match an entry of an active rollout's plan (the first entry
that matches decides) starts that entry's action, `rollback` or `pause`, at once, in a
thread of its own so that the webhook is answered without waiting for the target; the
action is journaled with the alert's fingerprint and labels. A fingerprint that a rollout
has acted on already (in this process, or journaled before it started) is a duplicate and
ignored; `resolved` alerts change nothing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rollout_cli.errors import RolloutError


class BadPayload(ValueError):
    """The body is not an Alertmanager webhook payload: the message says where."""


@dataclass(frozen=True)
class PushedAlert:
    status: str
    labels: Mapping[str, str]
    fingerprint: str

    @property
    def name(self) -> str:
        return str(self.labels.get("alertname") or self.fingerprint)

    def record(self) -> dict[str, Any]:
        """What the journal keeps of it."""
        return {"fingerprint": self.fingerprint, "labels": dict(self.labels),
                "status": self.status}


def parse_payload(body: bytes) -> list[PushedAlert]:
    """The alerts of a webhook body (version 4); BadPayload naming what is wrong."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadPayload(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadPayload("the body must be a JSON object (Alertmanager's webhook payload)")
    if str(data.get("version", "4")) != "4":
        raise BadPayload(f"version {data.get('version')!r}: only Alertmanager's webhook "
                         "version 4 is understood")
    alerts = data.get("alerts")
    if not isinstance(alerts, list):
        raise BadPayload("alerts: must be a list")
    found = []
    for index, alert in enumerate(alerts):
        if not isinstance(alert, dict):
            raise BadPayload(f"alerts[{index}]: must be an object")
        labels = alert.get("labels")
        if not isinstance(labels, dict):
            raise BadPayload(f"alerts[{index}].labels: must be an object")
        status = alert.get("status", data.get("status"))
        if status not in ("firing", "resolved"):
            raise BadPayload(f"alerts[{index}].status: must be 'firing' or 'resolved', "
                             f"got {status!r}")
        fingerprint = alert.get("fingerprint")
        if not isinstance(fingerprint, str) or not fingerprint:
            raise BadPayload(f"alerts[{index}].fingerprint: must be a non-empty string")
        found.append(PushedAlert(status, {str(k): str(v) for k, v in labels.items()},
                                 fingerprint))
    return found


@dataclass
class AlertRouter:
    """Matches pushed alerts to active rollouts and starts their actions."""

    context: Callable[..., Any]        # an operations Context for one action
    log: Callable[[str], None]
    seen: set[tuple[str, str]] = field(default_factory=set)   # (rollout, fingerprint)
    actions: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _read: set[str] = field(default_factory=set)      # rollouts whose journal was read

    def receive(self, alerts: list[PushedAlert]) -> dict[str, Any]:
        """Act on the firing alerts that match; what was done, for the webhook's answer."""
        from rollout_cli import operations

        started, duplicates, unmatched = [], [], 0
        firing = [alert for alert in alerts if alert.status == "firing"]
        candidates = operations.active_plans(self.context()) if firing else []
        for alert in firing:
            matched = False
            for meta, plan in candidates:
                entry = next((e for e in plan.alerts if e.matches(alert.labels)), None)
                if entry is None:
                    continue
                matched = True
                row = {"rollout": meta.id, "action": entry.action,
                       "fingerprint": alert.fingerprint, "alert": alert.name}
                if not self._first(meta.id, alert):
                    duplicates.append(row)
                    continue
                started.append(row)
                self._start(meta.id, entry.action, alert)
            unmatched += not matched
        return {"started": started, "duplicates": duplicates, "unmatched": unmatched,
                "resolved": len(alerts) - len(firing)}

    def _first(self, rollout_id: str, alert: PushedAlert) -> bool:
        """Whether ``alert`` is new to the rollout (and now seen): the journal is read once
        per rollout, for what an earlier agent acted on."""
        from rollout_cli import operations

        with self._lock:
            if rollout_id not in self._read:
                self._read.add(rollout_id)
                self.seen |= {(rollout_id, fingerprint) for fingerprint in
                              operations.alert_fingerprints(self.context(), rollout_id)}
            key = (rollout_id, alert.fingerprint)
            if key in self.seen:
                return False
            self.seen.add(key)
            return True

    def _start(self, rollout_id: str, action: str, alert: PushedAlert) -> None:
        thread = threading.Thread(target=self._act, args=(rollout_id, action, alert),
                                  daemon=True, name=f"alert {alert.fingerprint}")
        # Those that ended are dropped: an agent runs for months.
        self.actions = [*(t for t in self.actions if t.is_alive()), thread]
        thread.start()

    def _act(self, rollout_id: str, action: str, alert: PushedAlert) -> None:
        from rollout_cli import operations

        reason = f"alert {alert.name} fired (fingerprint {alert.fingerprint})"
        self.log(f"{rollout_id}  {reason}: {action}")
        ctx = self.context()
        try:
            if action == "rollback":
                result = operations.rollback(ctx, rollout_id, None, reason,
                                             alert=alert.record())
            else:
                result = operations.pause(ctx, rollout_id, reason, alert=alert.record())
        except RolloutError as problem:
            self.log(f"{rollout_id}  {action} for alert {alert.name} failed: {problem}")
            return
        self.log(f"{rollout_id}  {action} for alert {alert.name}: {result.state.phase}")

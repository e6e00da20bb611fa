"""What the agent shows of each rollout, on its page and in /metrics: one reading of the
store, so that both say the same.

Shown: every active rollout, and the newest rollout of each plan once it has ended (so
that a rollback is still seen, on the page and by Prometheus, after it happened).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from rollout_cli.errors import RolloutError


@dataclass(frozen=True)
class RolloutView:
    status: Any                 # operations.Status
    data: dict[str, Any]        # render.rollout_view.status_dict
    decisions: int              # analysis rounds judged
    rollbacks: int              # rollbacks started
    alerts: int                 # pushed alerts acted on
    active: bool

    @property
    def id(self) -> str:
        return str(self.status.meta.id)


def overview(ctx: Any, now: float | None = None) -> list[RolloutView]:
    from rollout_cli import operations
    from rollout_cli.render.rollout_view import status_dict

    now = time.time() if now is None else now
    active = {meta.id for meta in ctx.store.find_active()}
    newest = {meta.plan_name: meta.id for meta in ctx.store.list()}
    shown = [*sorted(active), *sorted(set(newest.values()) - active)]
    views = []
    for rollout_id in shown:
        try:
            status = operations.status(ctx, rollout_id, recent=40)
            counts = _counts(ctx, rollout_id)
        except RolloutError:      # damaged: `rollout status` says why; the rest is shown
            continue
        views.append(RolloutView(status, status_dict(status, now), *counts,
                                 active=rollout_id in active))
    return views


def _counts(ctx: Any, rollout_id: str) -> tuple[int, int, int]:
    from rollout_cli import operations
    from rollout_cli.engine import events as ev

    decisions = rollbacks = alerts = 0
    for event in operations.history(ctx, rollout_id)[1]:
        decisions += isinstance(event, ev.AnalysisRound)
        rollbacks += isinstance(event, ev.RollbackStarted)
        alerts += bool(getattr(event, "alert", None))
    return decisions, rollbacks, alerts

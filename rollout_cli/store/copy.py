"""Copy rollouts from one store to another (`rollout state copy FROM TO`): a team that
started on a directory moves to PostgreSQL, or takes a database's rollouts home.

Through the Store protocol alone, so any two stores will do. Each rollout is copied
whole: its metadata, its journal event by event (same seq, time and fields, so the
lines a directory store writes are byte for byte the ones it read), its snapshot, and
its plan's claim if it is active. Its lock in the source is held meanwhile, so nothing
is appended while it is copied. Rollouts that exist in the target are refused before
anything is copied; leases are not copied (a driver takes a new one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rollout_cli.errors import StateError
from rollout_cli.store.protocol import Rollout, RolloutMeta, Store

_ASSIGNED = ("seq", "time")


@dataclass
class Copied:
    """What a copy did: the rollouts copied, their events, the claims taken."""

    rollouts: list[str] = field(default_factory=list)
    events: int = 0
    claims: list[str] = field(default_factory=list)


def copy_rollouts(source: Store, target: Store, ids: Sequence[str] = (),
                  target_name: str = "the target") -> Copied:
    """Copy the rollouts ``ids`` (ids or unique prefixes; default: every one) from
    ``source`` to ``target``; StateError, nothing copied, if the target has one of them or
    a claim on the plan of an active one."""
    metas = [source.open(rollout_id).meta for rollout_id in ids] if ids else source.list()
    metas = sorted({meta.id: meta for meta in metas}.values(), key=lambda m: (m.created, m.id))
    active = {meta.id for meta in source.find_active()}
    _refuse_clashes(metas, active, target, target_name)
    copied = Copied()
    for meta in metas:
        rollout = source.open(meta.id)
        with rollout.lock("copy"):
            copied.events += _copy_one(rollout, meta, target, claim=meta.id in active)
        copied.rollouts.append(meta.id)
        if meta.id in active:
            copied.claims.append(meta.plan_name)
    return copied


def _refuse_clashes(metas: list[RolloutMeta], active: set[str], target: Store,
                    target_name: str) -> None:
    there = {meta.id for meta in target.list()}
    clash = [meta.id for meta in metas if meta.id in there]
    if clash:
        raise StateError(f"{target_name} already has rollout{'s' if len(clash) > 1 else ''} "
                         f"{', '.join(clash)}; nothing was copied (copy the others by id)")
    claimed = {meta.plan_name: meta.id for meta in target.find_active()}
    busy = [f"{meta.plan_name} (active there: {claimed[meta.plan_name]})" for meta in metas
            if meta.id in active and meta.plan_name in claimed]
    if busy:
        raise StateError(f"{target_name} has an active rollout of plan {', '.join(busy)};"
                         " nothing was copied: finish or roll it back first")


def _copy_one(rollout: Rollout, meta: RolloutMeta, target: Store, claim: bool) -> int:
    events = list(rollout.journal.events())
    if not events or events[0].get("type") != "created":
        raise StateError(f"rollout {meta.id} has no created event to start its copy from")
    first = events[0]
    details = {name: value for name, value in first.items()
               if name not in (*_ASSIGNED, "type")}
    make = target.start if claim else target.create
    copy = make(meta, time=first["time"], details=details)
    for event in events[1:]:
        stored = copy.journal.append({name: value for name, value in event.items()
                                      if name not in _ASSIGNED}, time=event["time"])
        if stored["seq"] != event["seq"]:
            raise StateError(f"the copy of rollout {meta.id} numbered event {event['seq']} as"
                             f" {stored['seq']}: something else wrote to it meanwhile")
    snapshot = rollout.load_snapshot()
    if snapshot is not None:
        copy.save_snapshot(snapshot.state, snapshot.seq)
    return len(events)

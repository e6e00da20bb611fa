"""Every event a rollout journals, as a type.

The engine decides in events (``decide`` answers ``Record(event)``), folds them into the
state (``state.apply``), and everything that follows a rollout (the live view, the
report, the simulation trace, notifications) reads them. They become JSON in one place
only, where the journal is written and read: ``to_json`` and ``from_json``.

An event's JSON is ``{"type": ..., fields...}`` (the journal adds ``seq`` and ``time``).
A field listed in a class's ``ALWAYS`` is always written; any other is written only when
it differs from its default, so an event says what is particular about it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rollout_cli.engine.analysis import Run
from rollout_cli.errors import StateError


@dataclass(frozen=True, kw_only=True)
class Event:
    TYPE: ClassVar[str] = ""
    ALWAYS: ClassVar[tuple[str, ...]] = ()

    seq: int = 0          # assigned by the journal
    time: float = 0.0     # assigned by the journal

    def stamped(self, seq: int, time: float) -> Event:
        """This event as journaled: with its seq and time."""
        return dataclasses.replace(self, seq=seq, time=time)

    def to_json(self) -> dict[str, Any]:
        """What the journal stores (without seq and time, which it assigns)."""
        found: dict[str, Any] = {"type": self.TYPE}
        for f in dataclasses.fields(self):
            if f.name in ("seq", "time"):
                continue
            value = getattr(self, f.name)
            if f.name in self.ALWAYS or value != _default(f):
                found[f.name] = _plain(value)
        return found

    def to_record(self) -> dict[str, Any]:
        """The journal's line for this event: seq and time first."""
        return {"seq": self.seq, "time": self.time, **self.to_json()}


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _plain(value: Any) -> Any:
    return value.to_json() if isinstance(value, Run) else value


# --- a rollout's life -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Created(Event):
    TYPE = "created"
    ALWAYS = ("plan",)
    plan: str = ""
    plan_file: str | None = None
    plan_digest: str = ""
    who: str | None = None
    stateless: bool = False      # a rollback from the plan alone
    simulated: bool = False


@dataclass(frozen=True, kw_only=True)
class AtStage(Event):
    """An event about one stage, named as the plan named it when it happened."""

    ALWAYS = ("stage", "name")
    stage: int
    name: str


@dataclass(frozen=True, kw_only=True)
class StageStarted(AtStage):
    TYPE = "stage-started"
    ALWAYS = ("stage", "name", "percentage")
    percentage: float | None = None


@dataclass(frozen=True, kw_only=True)
class StageBaking(Event):
    TYPE = "stage-baking"
    ALWAYS = ("stage", "since")
    stage: int
    since: float


@dataclass(frozen=True, kw_only=True)
class StageCompleted(AtStage):
    TYPE = "stage-completed"


@dataclass(frozen=True, kw_only=True)
class GateWaiting(AtStage):
    TYPE = "gate-waiting"


@dataclass(frozen=True, kw_only=True)
class GateApproved(Event):
    TYPE = "gate-approved"
    ALWAYS = ("stage", "who", "reason")
    stage: int | None = None
    name: str | None = None
    who: str | None = None
    reason: str | None = None
    auto: bool = False
    forced: bool = False


@dataclass(frozen=True, kw_only=True)
class PromotedFull(Event):
    TYPE = "promoted-full"
    ALWAYS = ("who", "reason")
    who: str | None = None
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class Paused(Event):
    TYPE = "paused"
    ALWAYS = ("reason",)
    reason: str | None = None
    who: str | None = None
    # A pushed alert that asked for it (rollout agent): its fingerprint and labels.
    alert: Mapping[str, Any] | None = None
    uncertain: str | None = None   # the call id whose outcome nobody can vouch for


@dataclass(frozen=True, kw_only=True)
class Resumed(Event):
    TYPE = "resumed"
    ALWAYS = ("who",)
    who: str | None = None


@dataclass(frozen=True, kw_only=True)
class PlanChanged(Event):
    TYPE = "plan-changed"
    ALWAYS = ("plan_digest", "who")
    plan_digest: str
    who: str | None = None


@dataclass(frozen=True, kw_only=True)
class Note(Event):
    TYPE = "note"
    ALWAYS = ("text",)
    text: str
    who: str | None = None


# --- calls: an intent before, an outcome after --------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Intent(Event):
    """A call about to be made: while it has no outcome, the rollout's ``pending`` call."""

    TYPE = "intent"
    ALWAYS = ("call_id", "kind", "stage", "step", "line", "idempotent")
    call_id: str
    kind: str                   # step | traffic | rollback
    stage: int | None = None
    step: int = 0
    line: str = ""              # redacted: method and URL, or the command
    idempotent: bool = True


@dataclass(frozen=True, kw_only=True)
class Outcome(Event):
    TYPE = "outcome"
    ALWAYS = ("call_id", "ok")
    call_id: str
    status: int | None = None
    exit_code: int | None = None
    attempts: int | None = None
    elapsed: float | None = None
    output: str | None = None
    ok: bool = False
    uncertain: bool = False     # no answer to a call that may have been applied
    error: str | None = None
    captures: Mapping[str, Any] = field(default_factory=dict)
    percentage: float | None = None   # traffic moved to

    def to_json(self) -> dict[str, Any]:
        found = super().to_json()
        if self.ok and self.status is not None:   # an answered request: what it captured
            moved = {"percentage": found.pop("percentage")} if "percentage" in found else {}
            found = {**found, "captures": dict(self.captures), **moved}
        return found


@dataclass(frozen=True, kw_only=True)
class CallResolved(Event):
    """A person's word on an uncertain call: ``assume-applied`` or ``resend``."""

    TYPE = "call-resolved"
    ALWAYS = ("call_id", "how", "who")
    call_id: str
    how: str
    who: str | None = None
    captures: Mapping[str, Any] = field(default_factory=dict)
    percentage: float | None = None


# --- analysis ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AnalysisStarted(Event):
    TYPE = "analysis-started"
    ALWAYS = ("scope", "started", "next_due")
    scope: str
    started: float
    next_due: float
    since: float | None = None


@dataclass(frozen=True, kw_only=True)
class Measured(Event):
    TYPE = "measured"
    ALWAYS = ("values", "errors", "keep")
    values: Mapping[str, Any] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    keep: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AnalysisRound(Event):
    TYPE = "analysis"
    ALWAYS = ("scope", "stage", "run")
    scope: str
    stage: int
    run: Run


# --- the end, and rollbacks ----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RollbackStarted(Event):
    TYPE = "rollback-started"
    ALWAYS = ("reason", "who")
    reason: str | None = None
    who: str | None = None
    # A pushed alert that asked for it (rollout agent): its fingerprint and labels.
    alert: Mapping[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class RollbackRequested(Event):
    """A person asked for a rollback while one was running: it goes on, cause kept."""

    TYPE = "rollback-requested"
    ALWAYS = ("reason", "who")
    reason: str | None = None
    who: str | None = None
    # A pushed alert that asked for it (rollout agent): its fingerprint and labels.
    alert: Mapping[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class Ended(Event):
    """How a rollout ended."""

    ALWAYS = ("reason",)
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class RolledBack(Ended):
    TYPE = "rolled-back"


@dataclass(frozen=True, kw_only=True)
class RollbackFailed(Ended):
    TYPE = "rollback-failed"


@dataclass(frozen=True, kw_only=True)
class Succeeded(Ended):
    TYPE = "succeeded"


@dataclass(frozen=True, kw_only=True)
class Failed(Ended):
    TYPE = "failed"


TYPES: dict[str, type[Event]] = {kind.TYPE: kind for kind in (
    Created, StageStarted, StageBaking, StageCompleted, GateWaiting, GateApproved,
    PromotedFull, Paused, Resumed, PlanChanged, Note, Intent, Outcome, CallResolved,
    AnalysisStarted, Measured, AnalysisRound, RollbackStarted, RollbackRequested, RolledBack,
    RollbackFailed, Succeeded, Failed)}
_FIELDS = {kind: frozenset(f.name for f in dataclasses.fields(kind)) for kind in TYPES.values()}


def from_json(data: Mapping[str, Any]) -> Event:
    """The event a journal line holds. Keys this version does not know are left out (a
    newer version may add some); a type it does not know is a StateError."""
    kind = TYPES.get(str(data.get("type")))
    if kind is None:
        raise StateError(f"journal event {data.get('seq', '?')} has type {data.get('type')!r}, "
                         "which this version of rollout does not know; upgrade rollout")
    values = {key: value for key, value in data.items() if key in _FIELDS[kind]}
    if kind is AnalysisRound and isinstance(values.get("run"), Mapping):
        values["run"] = Run.from_json(values["run"])
    try:
        return kind(**values)
    except TypeError as exc:
        raise StateError(f"journal event {data.get('seq', '?')} ({kind.TYPE}) lacks a "
                         f"field: {exc}") from None


__all__ = ["TYPES", "Event", "from_json", *(kind.__name__ for kind in TYPES.values()),
           "Ended"]

"""How rollouts show themselves: one line per event as it happens, status, list, history."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rollout_cli.plan.durations import format_duration
from rollout_cli.render.checks_view import checks_data, checks_lines, runs_data
from rollout_cli.render.console import stderr, stdout
from rollout_cli.words import gist

if TYPE_CHECKING:
    # The engine (and through it the plan's models) only once a rollout is shown:
    # `rollout status` in a state directory with nothing in it does not pay for them.
    from rollout_cli.engine import Event, RolloutState


def _clock(seconds: float) -> str:
    return datetime.fromtimestamp(seconds).strftime("%H:%M:%S")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds).astimezone().isoformat(timespec="seconds")


def json_line(data: Any) -> None:
    """One JSON document and its newline in one write, flushed: a signal that stops the
    command between two lines never leaves half of one for the result to run into."""
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def describe_event(event: Event) -> str:
    """One human line for a journaled event."""
    from rollout_cli.engine import events as ev

    match event:
        case ev.Created():
            return f"rollout created from {event.plan_file} by {event.who}"
        case ev.StageStarted(name=name, percentage=pct):
            return f"stage {name} started" + (f" ({pct:g}% traffic)" if pct is not None
                                              else "")
        case ev.Intent(line=line):
            return f"  -> {line}"
        case ev.Outcome():
            return _outcome(event)
        case ev.StageBaking():
            return "  baking"
        case ev.StageCompleted(name=name):
            return f"stage {name} completed"
        case ev.GateWaiting(name=name):
            return f"stage {name} waits at its manual gate"
        case ev.GateApproved():
            how = "auto-approved" if event.auto else "forced" if event.forced else "approved"
            why = f": {event.reason}" if event.reason else ""
            return f"gate {how} by {event.who}{why}"
        case ev.Paused() | ev.Ended() | ev.RollbackStarted():
            reason = getattr(event, "reason", None)
            return f"{event.TYPE}: {reason}" if reason else event.TYPE
        case ev.Resumed(who=who):
            return f"resumed by {who}"
        case ev.RollbackRequested(who=who):
            return f"rollback requested again by {who}: continuing the rollback"
        case ev.CallResolved(who=who, how=how):
            return f"uncertain call resolved by {who}: {how}"
        case ev.PromotedFull(who=who):
            return f"full promotion by {who}: remaining bakes and gates skipped"
        case ev.PlanChanged(plan_digest=digest, who=who):
            return f"plan changed (digest {digest[:12]}), accepted by {who}"
        case ev.Note(text=text):
            return text
        case ev.AnalysisRound():
            return _analysis(event)
        case ev.AnalysisStarted(scope=scope):
            return f"  {scope} analysis started"
        case ev.Measured(values=values):
            return "  measured " + ", ".join(f"{k}={_short(v)}" for k, v in values.items())
    return event.TYPE


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return f"[{len(value)} points]"
    return str(value)


def _analysis(event: Any, dry_shown: dict[str, str] | None = None) -> str:
    """The round and every check that did not pass. Dry-run checks show every time, or,
    given ``dry_shown`` (each one's verdict last shown), only when their verdict changed."""
    run = event.run
    lines = [f"  {event.scope} analysis #{run.rounds}: {run.phase or 'no checks'}"]
    for verdict in run.verdicts:
        if verdict.get("dry_run"):
            if dry_shown is not None:
                if dry_shown.get(verdict["check"]) == verdict["phase"]:
                    continue
                dry_shown[verdict["check"]] = verdict["phase"]
            lines.append(f"    {verdict['reason']} (dry run)")
        elif verdict["phase"] != "pass":
            lines.append(f"    {verdict['reason']}")
    return "\n".join(lines)


def _outcome(event: Any) -> str:
    timing = f" ({event.elapsed * 1000:.0f} ms)" if event.elapsed is not None else ""
    status = f" {event.status}" if event.status is not None else ""
    if event.uncertain:
        return f"     uncertain{status}: {event.error}{timing}"
    if event.ok:
        tries = f", {event.attempts} tries" if (event.attempts or 1) > 1 else ""
        return f"     ok{status}{timing}{tries}"
    return f"     FAILED{status}: {event.error}{timing}"


class EventPrinter:
    """Prints each event as it is journaled: timestamped lines for people (on stderr when
    stdout carries json), and with ``jsonl`` the event itself on stdout, one JSON object a
    line (the people's lines then go to stderr)."""

    def __init__(self, quiet: bool = False, jsonl: bool = False):
        self.console = stderr() if quiet or jsonl else stdout()
        self.jsonl = jsonl
        # Analysis rounds that say what the last one of their scope said, numbers aside,
        # are counted, not printed; dry-run checks show when their verdict changes.
        self.dry_shown: dict[str, str] = {}
        self.last_round: dict[str, str] = {}
        self.repeats: dict[str, tuple[int, float]] = {}

    def __call__(self, event: Event, state: RolloutState) -> None:
        if self.jsonl:
            json_line(event.to_record())
        if event.TYPE == "measured" and not getattr(event, "errors", None):
            return
        if event.TYPE == "analysis":
            scope = event.scope   # type: ignore[attr-defined]
            text = _analysis(event, self.dry_shown)
            said = gist(text.partition(":")[2])
            if self.last_round.get(scope) == said and "(dry run)" not in text:
                count, _ = self.repeats.get(scope, (0, event.time))
                self.repeats[scope] = (count + 1, event.time)
                return
            self._repeated()
            self.last_round[scope] = gist("\n".join(
                line for line in text.splitlines() if "(dry run)" not in line
            ).partition(":")[2])
        else:
            self._repeated()
            if event.TYPE == "analysis-started":   # a new stage's rounds start afresh
                self.last_round.pop(event.scope, None)   # type: ignore[attr-defined]
            text = describe_event(event)
        self.console.print(f"{_clock(event.time)}  {text}", markup=False)

    def _repeated(self) -> None:
        for scope, (count, until) in sorted(self.repeats.items()):
            self.console.print(f"{_clock(until)}    {scope} analysis: the same ×{count}",  # noqa: RUF001
                               markup=False)
        self.repeats.clear()


def print_lock_wait(subject: str, holder: dict[str, Any]) -> None:
    """On stderr, whatever stdout carries: this command waits for another one's lock."""
    stderr().print(f"waiting for the lock of {subject}: held by {holder.get('operation')} "
                   f"(pid {holder.get('pid')}, {holder.get('who')}, since "
                   f"{holder.get('created')}); carrying on once it is released",
                   markup=False)


def print_watching(lease: Any) -> None:
    """On stderr: another driver drives the rollout; this command watches it."""
    stderr().print(f"driven by {lease.driver.describe()}: watching; this command takes "
                   "over if that driver stops", markup=False)


NOBODY_DRIVES = "nobody is driving: run `rollout agent` or `rollout resume --follow`"


def driven_by(status: Any, now: float) -> str | None:
    """Who drives an active rollout, in words (None once it has ended)."""
    from rollout_cli.engine.phases import TERMINAL

    if status.state.phase in TERMINAL:
        return None
    lease = status.lease
    if lease is not None and lease.live(now):
        return f"driven by {lease.driver.describe()}"
    return NOBODY_DRIVES


def _waiting(decision: Any) -> bool:
    from rollout_cli.engine import Wait  # loaded already: there is a state to show

    return isinstance(decision, Wait)


def stage_name(plan: Any, state: RolloutState) -> str | None:
    """The name of the stage the rollout is at: as its journal has it once the stage has
    started (the plan file may have changed since), else as its plan has it."""
    if state.stage < len(state.stage_names):
        return state.stage_names[state.stage]
    stages = plan.stages if plan is not None else ()
    return stages[state.stage].name if state.stage < len(stages) else None


def next_step_hint(rollout_id: str, state: RolloutState, decision: Any,
                   stage: str | None = None) -> str:
    """What to type next. ``stage``: the current stage's name, for `advance --stage`."""
    advance = f"rollout advance {rollout_id}" + (f" --stage {stage}" if stage else "")
    if state.uncertain is not None:
        return (f"uncertain call {state.uncertain.line}: check the target, then "
                f"`rollout resume {rollout_id} --assume-applied` or `--resend`")
    if state.phase == "waiting-gate":
        return f"waiting at a manual gate: `{advance}`"
    if state.phase == "paused":
        return (f"paused ({state.pause_reason}): `rollout resume {rollout_id}`, "
                f"`{advance}` or `rollout rollback {rollout_id}`")
    if _waiting(decision) and decision.until is not None:
        return (f"baking: `rollout resume {rollout_id}` continues once the bake is over, "
                f"or `rollout status {rollout_id}`")
    return {"succeeded": "rollout succeeded",
            "rolled-back": f"rolled back: {state.reason}",
            "rollback-failed": f"ROLLBACK INCOMPLETE: {state.reason}",
            "failed": f"failed: {state.reason}"}.get(state.phase, state.phase)


def result_dict(result: Any, resume: str = "") -> dict[str, Any]:
    """An operation's result (operations.Result) for --output json and jsonl. ``resume``:
    the options that continue an interrupted command (`--follow`, `--auto-approve`)."""
    state: RolloutState = result.state
    return {"rollout": result.rollout_id or None, "phase": state.phase,
            "stage": stage_name(result.plan, state), "stage_index": state.stage,
            "percentage": state.percentage, "reason": state.reason,
            "pause_reason": state.pause_reason,
            "uncertain": state.uncertain.line if state.uncertain else None,
            "waiting_until": result.decision.until if _waiting(result.decision) else None,
            "exit_code": result.exit_code, "next": _next(result, resume),
            "note": result.message, "interrupted": result.interrupted}


def _next(result: Any, resume: str) -> str:
    if result.interrupted and not result.rollout_id:
        return f"interrupted ({result.interrupted}) before a rollout was created; nothing ran"
    if result.interrupted:
        command = " ".join(["rollout resume", result.rollout_id, *resume.split()])
        return f"interrupted ({result.interrupted}): `{command}` continues"
    return next_step_hint(result.rollout_id, result.state, result.decision, result.stage_name)


def print_result(result: Any, output: str, resume: str = "") -> None:
    data = result_dict(result, resume)
    if result.interrupted:   # aside, on stderr; stdout gets the result only if it is JSON
        stderr().print(data["next"], markup=False)
    if output == "json":
        json_line(data)
        return
    if output == "jsonl":
        json_line({"type": "result", **data})
        return
    if result.interrupted:
        return
    note = f"\nnote: {data['note']}" if data["note"] else ""
    stdout().print(f"rollout {data['rollout']}: {data['phase']} -- {data['next']}{note}",
                   markup=False)


def print_rollback_preview(preview: Any, err: bool = False) -> None:
    """Before the confirmation: what will be rolled back and every call it will send."""
    lines = [f"Rolling back {preview.subject}.", "It sends, in order:"]
    lines += [f"  {number}. {line}" + (f"  ({label})" if label else "")
              for number, (line, label) in enumerate(preview.steps, 1)]
    (stderr() if err else stdout()).print("\n".join(lines), markup=False)


def status_dict(status: Any, now: float) -> dict[str, Any]:
    state: RolloutState = status.state
    plan = status.plan
    name = stage_name(plan, state)
    stage = plan.stages[state.stage] if plan and state.stage < len(plan.stages) else None
    if stage is not None and stage.name != name:
        stage = None   # the plan file changed under the rollout: show only what it ran
    from rollout_cli.engine.phases import TERMINAL  # here: `status` of nothing needs none

    ended = state.phase in TERMINAL
    if ended:
        now = state.updated          # a finished rollout's clocks stop where it ended
    bake_left = None
    if stage and stage.bake and state.baking_since is not None and not ended:
        bake_left = max(0.0, stage.bake.min - state.baked_at(now))
    rolled_back = state.phase in ("rolled-back", "rollback-failed")
    return {
        "rollout": status.meta.id, "plan": status.meta.plan_name, "phase": state.phase,
        "stage": name, "stage_index": state.stage,
        "stages": len(plan.stages) if plan else None,
        # After a rollback the traffic is whatever the rollback calls made it, not the
        # stage's percentage: that one is kept as the percentage rolled back from.
        "percentage": None if rolled_back else state.percentage,
        "rolled_back_from": state.percentage if rolled_back else None,
        "time_in_stage": (now - state.stage_started_at) if state.stage_started_at else None,
        "bake_left": bake_left, "gate": stage.gate if stage else None,
        "gate_approved": state.gate_approved, "pause_reason": state.pause_reason,
        "reason": state.reason, "step_failure": state.step_failure,
        "uncertain": state.uncertain.line if state.uncertain else None,
        "captures": state.captures, "recent": [e.to_record() for e in status.recent],
        "exit_code": status.exit_code,
        "rollback_failures": list(state.rollback_failures),
        "rollback_uncertain": list(state.rollback_uncertain),
        "analysis": runs_data(state), "checks": checks_data(state, plan),
        "driven_by": driven_by(status, now),
        "driver": (status.lease.driver.to_json() | {"expires": status.lease.expires}
                   if status.lease is not None and status.lease.live(now) else None),
    }


def print_status(status: Any, now: float, output: str) -> None:
    data = status_dict(status, now)
    if output == "json":
        print(json.dumps(data))
        return
    if output == "jsonl":
        json_line({"type": "status", **data})
        return
    console = stdout()
    lines = [f"rollout   {data['rollout']}  (plan {data['plan']})",
             f"phase     {data['phase']}"]
    if data["driven_by"]:
        lines.append(f"driver    {data['driven_by']}")
    if data["stage"]:
        pct = "-" if data["percentage"] is None else f"{data['percentage']:g}%"
        if data["rolled_back_from"] is not None:
            pct = f"rolled back from {data['rolled_back_from']:g}%"
        lines.append(f"stage     {data['stage']} ({data['stage_index'] + 1}/{data['stages']}),"
                     f" traffic {pct}, gate {data['gate']}"
                     + (" (approved)" if data["gate_approved"] else ""))
    if data["time_in_stage"] is not None:
        lines.append(f"in stage  {format_duration(data['time_in_stage'])}")
    if data["bake_left"] is not None:
        lines.append(f"bake left {format_duration(data['bake_left'])}")
    for key in ("pause_reason", "reason", "step_failure", "uncertain"):
        if data[key]:
            lines.append(f"{key.replace('_', ' '):<9} {data[key]}")
    if data["captures"]:
        lines.append("captured  " + ", ".join(f"{k}={v}" for k, v in data["captures"].items()))
    if data["checks"]:
        lines.append("checks:")
        lines += ["  " + line for line in checks_lines(status.state, status.plan)]
    if data["recent"]:
        lines.append("recent:")
        lines += [f"  {_clock(e.time)}  {describe_event(e).strip()}" for e in status.recent]
    lines.append(f"next      {next_step_hint(data['rollout'], status.state, None, data['stage'])}")
    console.print("\n".join(lines), markup=False)


def print_list(rows: list[tuple[Any, RolloutState | None]], output: str) -> None:
    if output != "text":
        print(json.dumps([{"rollout": m.id, "plan": m.plan_name, "created_by": m.created_by,
                           "created": m.created.isoformat(),
                           "phase": s.phase if s else "unreadable"} for m, s in rows]))
        return
    if not rows:
        stdout().print("no rollouts yet", markup=False)
    for meta, state in rows:
        phase = state.phase if state else "unreadable state"
        stdout().print(f"{meta.id:<48} {phase:<16} {meta.created_by}", markup=False)


def print_history(meta: Any, events: Any, output: str) -> None:
    if output == "jsonl":
        for event in events:
            print(json.dumps(event.to_record()))
        return
    if output == "json":
        print(json.dumps({"rollout": meta.id, "plan": meta.plan_name,
                          "events": [event.to_record() for event in events]}))
        return
    for event in events:
        stdout().print(f"{event.seq:>5} {_iso(event.time)}  {describe_event(event)}",
                       markup=False)

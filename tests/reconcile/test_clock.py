"""The clock a rollout runs on: the wall clock read once per process, then moved by the
monotonic clock. A step of the wall clock (NTP, a resumed VM) neither stops analysis nor
shortens a bake; a resume that finds the wall clock behind the journal says so and does
not count the gap. Every clock here is injected: nothing sleeps."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import httpx

from rollout_cli.clock import ProcessClock
from rollout_cli.drivers.http import HttpDriver
from rollout_cli.engine import Finished, Policy
from rollout_cli.engine.events import Created
from rollout_cli.operations import Context, resume, start
from rollout_cli.plan import load_text
from rollout_cli.reconcile.executor import Executor
from rollout_cli.reconcile.loop import Reconciler
from rollout_cli.reconcile.memory import MemoryMeta, MemoryRollout, MemoryStore

PLAN = """\
version: 1
name: clocked
target: {base_url: "http://127.0.0.1:9", timeout: 1s, retry: {attempts: 1}}
traffic: {request: POST /w, json: {p: "{{ percentage }}"}, idempotent: true}
metrics:
  rate: {http: {get: /r}, select: ok}
checks:
  ok: {metric: rate, pass: ">= 0.95"}
analysis: {interval: 10s, checks: [ok]}
stages:
  - {name: canary, percentage: 10, bake: 5m}
  - {name: full, percentage: 100, bake: 5m}
rollback:
  - {request: POST /off, idempotent: true}
"""


class Machine:
    """A wall clock and a monotonic clock that sleeping moves together, until the wall
    clock is stepped (``step``) at a monotonic instant."""

    def __init__(self, wall: float = 1_800_000_000.0) -> None:
        self.mono = 100.0
        self.offset = wall - self.mono
        self.steps: list[tuple[float, float]] = []   # (at monotonic, seconds)

    def wall(self) -> float:
        while self.steps and self.mono >= self.steps[0][0]:
            self.offset += self.steps.pop(0)[1]
        return self.mono + self.offset

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.mono += seconds

    def step(self, at: float, seconds: float) -> None:
        self.steps.append((self.mono + at, seconds))


def healthy(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"ok": 0.99})


def run_in_memory(machine: Machine) -> tuple[list[dict[str, Any]], Any]:
    loaded = load_text(PLAN, "clocked.yaml", {})
    http = HttpDriver(transport=httpx.MockTransport(healthy), sleep=machine.sleep,
                      clock=machine.monotonic)
    events: list[dict[str, Any]] = []
    monotonic_at: list[float] = []

    def sink(event: Any, state: Any) -> None:
        events.append(event.to_record())
        monotonic_at.append(machine.mono)

    reconciler = Reconciler(MemoryStore(), MemoryRollout(MemoryMeta("r", "clocked")),
                            Executor(loaded, http), Policy(auto_approve=True),
                            ProcessClock(machine.wall, machine.monotonic, machine.sleep), sink)
    reconciler.record(Created())
    decision = reconciler.run(follow=True, deadline=reconciler.clock.now() + 3600)
    return [{**e, "mono": t} for e, t in zip(events, monotonic_at, strict=True)], decision


def bakes(events: list[dict[str, Any]]) -> list[float]:
    """Each stage's bake, from its stage-baking to its stage-completed, on the monotonic
    clock."""
    started = [e["mono"] for e in events if e["type"] == "stage-baking"]
    ended = [e["mono"] for e in events if e["type"] == "stage-completed"]
    return [end - begin for begin, end in zip(started, ended, strict=True)]


def test_a_wall_clock_step_back_neither_stops_analysis_nor_stretches_the_bake():
    machine = Machine()
    machine.step(at=60, seconds=-3600)      # a minute into the canary, an hour back

    events, decision = run_in_memory(machine)

    assert decision == Finished("succeeded", "every stage completed")
    assert all(300 <= bake < 311 for bake in bakes(events)), bakes(events)
    rounds = [e["mono"] for e in events if e["type"] == "analysis"]
    assert max(b - a for a, b in itertools.pairwise(rounds)) <= 11


def test_a_wall_clock_step_forward_does_not_shorten_the_bake():
    machine = Machine()
    machine.step(at=60, seconds=+3600)

    events, decision = run_in_memory(machine)

    assert decision == Finished("succeeded", "every stage completed")
    assert all(bake >= 300 for bake in bakes(events)), bakes(events)


def test_journal_times_never_go_back_within_a_process():
    machine = Machine()
    machine.step(at=60, seconds=-3600)

    events, _ = run_in_memory(machine)

    times = [e["time"] for e in events]
    assert times == sorted(times)


def test_a_resume_behind_the_journal_notes_it_and_does_not_count_the_gap(tmp_path: Path):
    plan = tmp_path / "clocked.yaml"
    plan.write_text(PLAN)
    machine = Machine()
    ctx = Context.at(tmp_path / "state", transport=httpx.MockTransport(healthy), env={},
                  now=machine.wall, monotonic=machine.monotonic, sleep=machine.sleep)
    started = start(ctx, plan, follow=False)
    last = started.state.updated
    machine.sleep(120)                      # two minutes of the bake pass ...
    machine.offset -= 3600                  # ... then the machine resumes an hour behind

    resumed = resume(ctx, started.rollout_id, follow=False)

    journal = [json.loads(line) for line in (tmp_path / "state" / "rollouts" /
                                             started.rollout_id / "journal.jsonl").open()]
    note = next(e for e in journal if e["type"] == "note" and "behind" in e["text"])
    assert "3480s" in note["text"] or "58m" in note["text"], note["text"]
    assert note["time"] >= last
    assert [e["time"] for e in journal] == sorted(e["time"] for e in journal)
    # The gap is not counted: the canary's five-minute bake still has about five left.
    assert resumed.state.baked_at(resumed.state.updated) < 1.0

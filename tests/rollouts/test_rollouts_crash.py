"""Kill the rollout after any durable state write, recover, and end exactly where an
uninterrupted run ends, without a non-idempotent call sent twice or anything left behind.

The plan is plans/brain-api-demo.yaml with its bakes set to 0s and without analysis (see
conftest.derive_plan), so that every run journals the same events; the tests of one
uncertain call make POST ab-testing/start non-idempotent (the demo declares it
idempotent), and the timed-out one shortens the target's timeout.

The crash: `rollout run --auto-approve` with killpoints.kill_env(N) SIGKILLs itself right
after its Nth durable write of any kind: journal appends, and before the first of them,
the writes that create the rollout (plan lock, claim, metadata, publishing its directory).
The sweep runs every N of an uninterrupted run, each in a process forked from a helper
that has already imported rollout (tests/rollouts/forked.py: ~95 fresh interpreters would
spend over a minute importing); one test does the same in a real interpreter.

What the operator does after a crash, written down in ``recover``:
1. `rollout resume --follow --auto-approve`. The killed process's lock is stale (its pid
   is gone on this host): resume takes it over and journals a note saying so.
2. Exit 2 with "no active rollout" and no rollout at all (killed before the rollout was
   created): `rollout run PLAN --auto-approve` again.
3. Exit 3 (or 2, when it was already paused for it) with an uncertain call, a
   non-idempotent call that may or may not have been applied: look for it in the
   sandbox's call log. There: it was applied, `resume --assume-applied`. Not there, or a
   local command (which never reaches the target; the demo's are echoes): `--resend`.
4. Exit 2 because the call assumed applied captures values from its lost answer (POST
   ab-testing/start captures test_id): read them on the target and resume with
   `--assume-applied --capture NAME=VALUE`.
5. Exit 0: the rollout succeeded.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rollout_cli.sandbox import create_sandbox, running_sandbox
from rollout_cli.store import is_stale
from tests.conftest import CliResult
from tests.rollouts import killpoints
from tests.rollouts.conftest import (
    SEED,
    TIME_SCALE,
    Operator,
    Target,
    derive_plan,
    killed_after,
    serve,
)
from tests.rollouts.forked import Zygote
from tests.rollouts.killpoints import kill_env

AB_START = ("POST", "/api/admin/ab-testing/start")
NON_IDEMPOTENT = [AB_START, ("POST", "/api/admin/alerts/emergency")]
RESUME = ("resume", "--follow", "--auto-approve")
TOOK_OVER = "took over the stale lock"
CLEARED = "cleared the claim of"
WANTS_CAPTURES = r"captures ([\w, ]+) from its answer, which was lost"


def recover(operator: Operator, target: Target, plan: Path, rounds: int = 6) -> list[str]:
    """Take a crashed rollout to its end the way an operator would; the steps taken."""
    taken: list[str] = []
    command: tuple[str, ...] = RESUME
    for _ in range(rounds):
        result = operator(*command)
        command = RESUME
        if result.code == 0:
            return taken
        if result.code == 2 and "no active rollout" in result.err:
            if operator.rollout_ids() and operator.status()["phase"] == "succeeded":
                return taken  # killed after the rollout ended and let go of its claim
            assert not operator.rollout_ids(), result.err
            taken.append("run")
            command = ("run", str(plan), "--auto-approve")
        elif result.code == 2 and (wanted := re.search(WANTS_CAPTURES, result.err)):
            values = [f"{name}={target.lookup(name)}" for name in wanted[1].split(", ")]
            taken.append("--capture")
            command = (*RESUME, "--assume-applied",
                       *(arg for value in values for arg in ("--capture", value)))
        elif result.code in (2, 3) and (line := operator.status()["uncertain"]):
            how = "--assume-applied" if target.received(line) else "--resend"
            taken.append(how)
            command = (*RESUME, how)
        else:
            raise AssertionError(f"{command[0]} exited {result.code}:\n{result.out}\n{result.err}")
    raise AssertionError(f"still not done after {rounds} rounds: {taken}")


def left_behind(operator: Operator) -> list[str]:
    """What a finished rollout should not leave: a lock that is not stale (the next command
    takes a stale one over), a claim, a temp or staging file."""
    store = operator.store
    found = [f"lock {record['id']}" for record in store.held_locks() if not is_stale(record)]
    found += [f"claim of {meta.id}" for meta in store.find_active()]
    found += [str(path.relative_to(operator.state_dir))
              for path in operator.state_dir.rglob(".*") if not path.name.endswith(".guard")]
    return found


def _repeated(changes: Iterable[tuple[str, str, Any]]) -> list[tuple[str, str]]:
    calls = [(method, path) for method, path, _ in changes]
    return [call for call in NON_IDEMPOTENT if calls.count(call) > 1]


class Reference:
    """An uninterrupted run: its writes, its journal, the calls the sandbox got, the end."""

    def __init__(self, operator: Operator, target: Target, writes: list[str]):
        self.writes = writes
        self.events = operator.events()
        self.changes = target.changes()
        self.outcome = target.outcome()

    def claimed(self, n: int) -> bool:
        """Whether the plan's claim was taken once write ``n`` was done (a start's second
        write; its first takes the plan's lock)."""
        return self.writes[:n].count("exclusive-create") >= 2

    def published(self, n: int) -> bool:
        """Whether the rollout's directory was in place once write ``n`` was done."""
        return "publish" in self.writes[:n]

    def journaled(self, n: int) -> int:
        """How many events the rollout's journal holds once write ``n`` was done."""
        return self.writes[:n].count(killpoints.JOURNAL_APPEND) if self.published(n) else 0

    def must_resolve(self, n: int) -> bool:
        """Whether a crash right after write ``n`` leaves a non-idempotent call uncertain."""
        journaled = self.journaled(n)
        event = self.events[journaled - 1] if journaled else {}
        return event.get("type") == "intent" and not event["idempotent"]

    def creation_window(self) -> range:
        """The writes up to the rollout's first stage-started, the first event after created."""
        first_stage = next(e["seq"] for e in self.events if e["type"] == "stage-started")
        return range(1, next(n for n in range(1, len(self.writes) + 1)
                             if self.journaled(n) == first_stage) + 1)


@pytest.fixture
def reference(rollout: Callable[..., CliResult], zygote: Zygote, fast_plan: Path,
              tmp_path: Path, clean_env: None) -> Reference:
    operator = Operator(rollout, tmp_path / "reference", tmp_path)
    log = tmp_path / "reference-writes.log"
    with serve() as target:
        result = zygote.run(["run", str(fast_plan), "--auto-approve", "--state-dir",
                             str(operator.state_dir)],
                            {**operator.env(), "BRAIN_API_URL": target.url,
                             killpoints.WRITE_LOG: str(log)}, tmp_path)
        assert result.code == 0, result.out + result.err
        return Reference(operator, target, log.read_text().split())


def crash(zygote: Zygote, operator: Operator, plan: Path, n: int) -> CliResult:
    """`rollout run PLAN --auto-approve`, SIGKILLed right after its Nth durable write."""
    return zygote.run(["run", str(plan), "--auto-approve", "--state-dir",
                       str(operator.state_dir)], {**operator.env(), **kill_env(n)},
                      operator.cwd)


def test_the_reference_run_is_what_the_crash_sweep_compares_with(reference: Reference):
    assert reference.events[-1]["type"] == "succeeded"
    assert reference.outcome == {"test": "stopped", "percentage": 100, "flags": {}}
    assert [n for n in range(1, len(reference.writes)) if reference.must_resolve(n)] != []
    assert _repeated(reference.changes) == []
    # The sweep reaches every kind of write, and the rollout's creation is several of them.
    assert set(reference.writes) == set(killpoints.KINDS)
    assert len(reference.creation_window()) >= 5
    assert reference.journaled(len(reference.writes)) == len(reference.events)


def test_crash_after_every_state_write_then_recover(
        reference: Reference, rollout: Callable[..., CliResult], zygote: Zygote,
        fast_plan: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    problems = []
    resolved = []
    for n in range(1, len(reference.writes) + 1):
        operator = Operator(rollout, tmp_path / f"crash-{n}", tmp_path)
        with serve() as target:
            monkeypatch.setenv("BRAIN_API_URL", target.url)
            crashed = crash(zygote, operator, fast_plan, n)
            try:
                assert crashed.code == -9, f"exit {crashed.code}: {crashed.err}"
                journaled = reference.journaled(n)
                assert len(operator.events() if journaled else []) == journaled
                taken = recover(operator, target, fast_plan)
                assert ("run" in taken) == (not reference.published(n))
                # A lock the killed process held was taken over, a claim whose rollout was
                # never published was cleared, and that is journaled.
                notes = [e["text"] for e in operator.events() if e["type"] == "note"]
                said = [kind for note in notes for kind in (TOOK_OVER, CLEARED)
                        if note.startswith(kind)]
                cleared = reference.claimed(n) and not reference.published(n)
                assert len(said) == len(notes), notes
                assert said in ([[CLEARED]] if cleared else [[], [TOOK_OVER]]), notes
                assert [e for e in operator.events() if e["type"] != "note"][-1]["type"] == (
                    "succeeded")
                assert target.outcome() == reference.outcome
                assert target.changes() == reference.changes
                assert _repeated(target.changes()) == []
                assert left_behind(operator) == []
            except AssertionError as problem:
                problems.append(f"crash after write {n} ({reference.writes[n - 1]}): {problem}")
                continue
        if set(taken) & {"--assume-applied", "--resend"}:
            resolved.append(n)
    assert problems == [], "\n\n".join(problems)
    # The sweep went through the hard case: every crash between the intent of a
    # non-idempotent call and its sending needed a person, and only those.
    must = [n for n in range(1, len(reference.writes) + 1) if reference.must_resolve(n)]
    assert resolved == must


def test_crash_in_a_real_interpreter_before_the_ab_test_starts(
        reference: Reference, operator: Operator, target: Target, strict_plan: Path):
    n = next(e["seq"] for e in reference.events if e["type"] == "intent"
             and e["line"].endswith(AB_START[1]))

    crashed = operator.process("run", str(strict_plan), "--auto-approve",
                               env=killed_after(n))

    assert crashed.code == -9
    assert operator.events()[-1]["line"].startswith("POST ")
    assert recover(operator, target, strict_plan) == ["--resend"]
    assert target.changes() == reference.changes
    assert target.outcome() == reference.outcome


# What each command may answer after a crash while the rollout was being created: before
# the rollout's directory is published there is no rollout at all, after it one that runs.
NOTHING = (2, "no active rollout")
AFTER_CREATION_CRASH = {
    ("list",): {False: (0, "no rollouts yet"), True: (0, "running")},
    ("status",): {False: NOTHING, True: (0, "phase")},
    ("pause", "--reason", "crash drill"): {False: NOTHING, True: (3, "crash drill")},
    ("rollback", "--yes"): {False: NOTHING, True: (1, "rolled back")},
}


def test_every_command_handles_a_crash_while_the_rollout_is_created(
        reference: Reference, rollout: Callable[..., CliResult], zygote: Zygote,
        fast_plan: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    problems = []
    for n in reference.creation_window():
        crashed_state = tmp_path / f"created-{n}"
        with serve() as target:
            monkeypatch.setenv("BRAIN_API_URL", target.url)
            assert crash(zygote, Operator(rollout, crashed_state, tmp_path), fast_plan,
                         n).code == -9
            published = reference.published(n)
            for command, answers in AFTER_CREATION_CRASH.items():
                copy = tmp_path / f"created-{n}-{command[0]}"
                shutil.copytree(crashed_state, copy)
                result = Operator(rollout, copy, tmp_path)(*command)
                code, says = answers[published]
                if result.code != code or says not in result.out + result.err:
                    problems.append(f"after write {n} ({reference.writes[n - 1]}), "
                                    f"`{' '.join(command)}` exited {result.code}: "
                                    f"{result.out}{result.err}")
            again = Operator(rollout, crashed_state, tmp_path)("run", str(fast_plan),
                                                               "--auto-approve")
            expected = (4, "already has an active rollout") if published else (0, "succeeded")
            if again.code != expected[0] or expected[1] not in again.out + again.err:
                problems.append(f"after write {n} ({reference.writes[n - 1]}), `run` exited "
                                f"{again.code}: {again.out}{again.err}")
    assert problems == [], "\n\n".join(problems)


# --- calls that stall: the request reached the target, its answer never came back ------


class Stall:
    """WSGI middleware before the sandbox: the first METHOD PATH is applied by the sandbox,
    then its answer is held back until ``release()`` (at most ``hold`` seconds)."""

    def __init__(self, app: Any, method: str, path: str, hold: float = 10.0):
        self.app, self.method, self.path, self.hold = app, method, path, hold
        self.applied = threading.Event()
        self._released = threading.Event()

    def release(self) -> None:
        self._released.set()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        body = list(self.app(environ, start_response))
        if (environ["REQUEST_METHOD"], environ["PATH_INFO"]) == (self.method, self.path) and (
                not self.applied.is_set()):
            self.applied.set()
            self._released.wait(self.hold)
        return body


@pytest.fixture
def stalled_start(clean_env: None, monkeypatch: pytest.MonkeyPatch
                  ) -> Iterator[tuple[Target, Stall]]:
    stall = Stall(create_sandbox("healthy", seed=SEED, time_scale=TIME_SCALE), *AB_START)
    with running_sandbox(stall) as running:  # type: ignore[arg-type]
        monkeypatch.setenv("BRAIN_API_URL", running.url)
        target = Target(running.url)
        try:
            yield target, stall
        finally:
            stall.release()
            target.close()


def test_killed_while_a_non_idempotent_call_is_in_flight(
        operator: Operator, stalled_start: tuple[Target, Stall], strict_plan: Path):
    target, stall = stalled_start
    process = operator.spawn("run", str(strict_plan), "--auto-approve")
    try:
        assert stall.applied.wait(30), "the rollout never sent POST ab-testing/start"
    finally:
        process.kill()
    assert operator.finish(process).code == -9
    stall.release()
    assert operator.events()[-1]["type"] == "intent"

    assert recover(operator, target, strict_plan) == ["--assume-applied", "--capture"]
    assert operator.status()["phase"] == "succeeded"
    assert _repeated(target.changes()) == []
    assert target.outcome() == {"test": "stopped", "percentage": 100, "flags": {}}


def test_a_timed_out_non_idempotent_call_is_never_sent_again(
        operator: Operator, stalled_start: tuple[Target, Stall], tmp_path: Path):
    """The request reached the target and the client gave up waiting: the rollout must stop
    and ask (exit 3), not send POST ab-testing/start a second time."""
    target, stall = stalled_start
    plan = derive_plan(tmp_path / "short-timeout.yaml", strict_start=True, timeout="300ms")

    stopped = operator("run", str(plan), "--auto-approve")
    stall.release()

    assert [call for call in target.changes() if call[:2] == AB_START] != []
    assert _repeated(target.changes()) == [], "POST ab-testing/start was sent twice"
    assert stopped.code == 3, stopped.out + stopped.err
    status = operator.status()
    assert status["phase"] == "paused"
    assert status["uncertain"].endswith(AB_START[1])
    assert recover(operator, target, plan) == ["--assume-applied", "--capture"]
    assert _repeated(target.changes()) == []
    assert operator.status()["phase"] == "succeeded"



def test_assume_applied_asks_for_what_the_lost_answer_captured(
        operator: Operator, stalled_start: tuple[Target, Stall], strict_plan: Path):
    _, stall = stalled_start
    process = operator.spawn("run", str(strict_plan), "--auto-approve")
    try:
        assert stall.applied.wait(30), "the rollout never sent POST ab-testing/start"
    finally:
        process.kill()
    operator.finish(process)
    stall.release()
    assert operator(*RESUME).code == 3                       # paused on the uncertain call
    misplaced = operator(*RESUME, "--resend", "--capture", "test_id=x")
    assert misplaced.code == 2
    assert "--capture goes with --assume-applied" in misplaced.err
    bare = operator(*RESUME, "--assume-applied")
    assert bare.code == 2
    assert "captures test_id from its answer, which was lost" in bare.err
    assert "--capture NAME=VALUE" in bare.err
    typo = operator(*RESUME, "--assume-applied", "--capture", "testid=x")
    assert typo.code == 2
    assert "captures nothing named testid (it captures test_id)" in typo.err
    malformed = operator(*RESUME, "--assume-applied", "--capture", "test_id")
    assert malformed.code == 2
    assert "--capture takes NAME=VALUE" in malformed.err
    status = operator.status()
    assert (status["phase"], status["uncertain"].endswith(AB_START[1])) == ("paused", True)


# --- a rollback killed anywhere, then `rollout rollback` again ------------------------

ALERT = ("POST", "/api/admin/alerts/emergency")
ROLLBACK = ("rollback", "--yes", "--reason", "error rate above 10%")


def test_crash_after_every_write_of_a_rollback_then_roll_back_again(
        rollout: Callable[..., CliResult], zygote: Zygote, strict_plan: Path,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The rollback round: killed after any of its writes (its start, each intent and
    outcome, its end), a second `rollout rollback` continues it. Every idempotent step
    arrives, the alert (not idempotent) at most once, and the cause stays the reason."""
    def rolled_back(state_dir: Path, env: dict[str, str]) -> tuple[Operator, Target, Any]:
        operator = Operator(rollout, state_dir, tmp_path)
        assert operator("start", str(strict_plan)).code == 3     # at canary-10's gate
        killed = zygote.run([*ROLLBACK, "--state-dir", str(state_dir)],
                            {**operator.env(), **env}, tmp_path)
        return operator, target, killed

    log = tmp_path / "rollback-writes.log"
    with serve() as target:
        monkeypatch.setenv("BRAIN_API_URL", target.url)
        _, _, done = rolled_back(tmp_path / "reference", {killpoints.WRITE_LOG: str(log)})
        assert done.code == 1, done.out + done.err
    writes = log.read_text().split()
    assert writes.count(killpoints.JOURNAL_APPEND) >= 2 * len(EMERGENCY) + 2

    problems = []
    for n in range(1, len(writes) + 1):
        with serve() as target:
            monkeypatch.setenv("BRAIN_API_URL", target.url)
            operator, _, killed = rolled_back(tmp_path / f"rollback-{n}", kill_env(n))
            try:
                assert killed.code == -9, f"exit {killed.code}: {killed.err}"
                again = operator(*ROLLBACK)
                done = "no active rollout" in again.err and "has ended rolled-back" in again.err
                if not done:          # killed after its end: nothing more to send, it says
                    assert again.code == 1, again.out + again.err
                status = operator.status()
                assert status["phase"] == "rolled-back", status
                assert status["reason"].startswith("error rate above 10%"), status["reason"]
                calls = [(method, path) for method, path, _ in target.changes()]
                assert calls.count(ALERT) <= 1, calls
                assert [c for c in EMERGENCY if c != ALERT and c not in calls] == [], calls
                if ALERT not in calls:   # in flight when killed: named, not re-sent
                    assert "not re-sent" in status["reason"], status["reason"]
                assert target.state()["flags"].get("USE_MODERN_BRAIN_API") is False
                assert left_behind(operator) == []
            except AssertionError as problem:
                problems.append(f"crash after rollback write {n} ({writes[n - 1]}): {problem}")
    assert problems == [], "\n\n".join(problems)


EMERGENCY = [("POST", "/api/admin/feature-flags/disable"),
             ("POST", "/api/admin/ab-testing/emergency-stop"),
             ("POST", "/api/admin/memory/cleanup"), ALERT]

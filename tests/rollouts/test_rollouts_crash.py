"""Kill the rollout after any journal append, resume, and end exactly where an
uninterrupted run ends, without a non-idempotent call sent twice.

The plan is plans/brain-api-demo.yaml with its bakes set to 0s and without analysis (see
conftest.derive_plan), so that every run journals the same events; the tests of one
uncertain call make POST ab-testing/start non-idempotent (the demo declares it
idempotent), and the timed-out one shortens the target's timeout.

The crash: `rollout run --auto-approve` with killed_after(N) (killpoints.py) SIGKILLs itself
right after its Nth journal append. The sweep runs every N of an uninterrupted run, each
in a process forked from a helper that has already imported rollout (tests/rollouts/
forked.py: ~90 fresh interpreters would spend over a minute importing); one test does the
same in a real `python -m rollout_cli` process.

What the operator does after a crash, written down in ``recover``:
1. `rollout resume --follow --auto-approve`. The killed process's lock is stale (its pid
   is gone on this host): resume takes it over and journals a note saying so.
2. Exit 3 (or 2, when it was already paused for it) with an uncertain call, a
   non-idempotent call that may or may not have been applied: look for it in the
   sandbox's call log. There: it was applied, `resume --assume-applied`. Not there, or a
   local command (which never reaches the target; the demo's are echoes): `--resend`.
3. Exit 2 because the call assumed applied captures values from its lost answer (POST
   ab-testing/start captures test_id): read them on the target and resume with
   `--assume-applied --capture NAME=VALUE`.
4. Exit 0: the rollout succeeded.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rollout_cli.sandbox import create_sandbox, running_sandbox
from tests.conftest import CliResult
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

AB_START = ("POST", "/api/admin/ab-testing/start")
NON_IDEMPOTENT = [AB_START, ("POST", "/api/admin/alerts/emergency")]
RESUME = ("resume", "--follow", "--auto-approve")
TOOK_OVER = "took over the stale lock"
WANTS_CAPTURES = r"captures ([\w, ]+) from its answer, which was lost"


def recover(operator: Operator, target: Target, rounds: int = 6) -> list[str]:
    """Resume a crashed rollout to its end the way an operator would; the steps taken."""
    taken: list[str] = []
    resume: tuple[str, ...] = RESUME
    for _ in range(rounds):
        result = operator(*resume)
        resume = RESUME
        if result.code == 0:
            return taken
        if result.code == 2 and (wanted := re.search(WANTS_CAPTURES, result.err)):
            values = [f"{name}={target.lookup(name)}" for name in wanted[1].split(", ")]
            taken.append("--capture")
            resume = (*RESUME, "--assume-applied",
                      *(arg for value in values for arg in ("--capture", value)))
        elif result.code in (2, 3) and (line := operator.status()["uncertain"]):
            how = "--assume-applied" if target.received(line) else "--resend"
            taken.append(how)
            resume = (*RESUME, how)
        else:
            raise AssertionError(f"resume exited {result.code}:\n{result.out}\n{result.err}")
    raise AssertionError(f"still not done after {rounds} rounds: {taken}")


def _repeated(changes: Iterable[tuple[str, str, Any]]) -> list[tuple[str, str]]:
    calls = [(method, path) for method, path, _ in changes]
    return [call for call in NON_IDEMPOTENT if calls.count(call) > 1]


class Reference:
    """An uninterrupted run: its journal, the calls the sandbox got, where it ended."""

    def __init__(self, operator: Operator, target: Target):
        self.events = operator.events()
        self.changes = target.changes()
        self.outcome = target.outcome()

    def must_resolve(self, n: int) -> bool:
        """Whether a crash right after event ``n`` leaves a non-idempotent call uncertain."""
        event = self.events[n - 1]
        return event["type"] == "intent" and not event["idempotent"]


@pytest.fixture
def reference(rollout: Callable[..., CliResult], zygote: Zygote, fast_plan: Path,
              tmp_path: Path, clean_env: None) -> Reference:
    operator = Operator(rollout, tmp_path / "reference", tmp_path)
    with serve() as target:
        result = zygote.run(["run", str(fast_plan), "--auto-approve", "--state-dir",
                             str(operator.state_dir)],
                            {**operator.env(), "BRAIN_API_URL": target.url}, tmp_path)
        assert result.code == 0, result.out + result.err
        return Reference(operator, target)


def test_the_reference_run_is_what_the_crash_sweep_compares_with(reference: Reference):
    assert reference.events[-1]["type"] == "succeeded"
    assert reference.outcome == {"test": "stopped", "percentage": 100, "flags": {}}
    assert [n for n in range(1, len(reference.events)) if reference.must_resolve(n)] != []
    assert _repeated(reference.changes) == []


def test_crash_after_every_journal_event_then_resume(
        reference: Reference, rollout: Callable[..., CliResult], zygote: Zygote,
        fast_plan: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    problems = []
    resolved = []
    for n in range(1, len(reference.events)):
        operator = Operator(rollout, tmp_path / f"crash-{n}", tmp_path)
        with serve() as target:
            monkeypatch.setenv("BRAIN_API_URL", target.url)
            crashed = zygote.run(["run", str(fast_plan), "--auto-approve", "--state-dir",
                                  str(operator.state_dir)],
                                 {**operator.env(), **killed_after(n)}, tmp_path)
            try:
                assert crashed.code == -9, f"exit {crashed.code}: {crashed.err}"
                assert len(operator.events()) == n
                taken = recover(operator, target)
                # The killed process always held the lock, and resume took it over.
                notes = [e["text"] for e in operator.events() if e["type"] == "note"]
                assert [note.startswith(TOOK_OVER) for note in notes] == [True], notes
                assert operator.events()[-1]["type"] == "succeeded"
                assert target.outcome() == reference.outcome
                assert target.changes() == reference.changes
                assert _repeated(target.changes()) == []
            except AssertionError as problem:
                problems.append(f"crash after event {n}: {problem}")
                continue
        if taken:
            resolved.append(n)
    assert problems == []
    # The sweep went through the hard case: every crash between the intent of a
    # non-idempotent call and its sending needed a person, and only those.
    must = [n for n in range(1, len(reference.events)) if reference.must_resolve(n)]
    assert resolved == must


def test_crash_in_a_real_interpreter_before_the_ab_test_starts(
        reference: Reference, operator: Operator, target: Target, strict_plan: Path):
    n = next(e["seq"] for e in reference.events if e["type"] == "intent"
             and e["line"].endswith(AB_START[1]))

    crashed = operator.process("run", str(strict_plan), "--auto-approve",
                               env=killed_after(n))

    assert crashed.code == -9
    assert operator.events()[-1]["line"].startswith("POST ")
    assert recover(operator, target) == ["--resend"]
    assert target.changes() == reference.changes
    assert target.outcome() == reference.outcome


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

    assert recover(operator, target) == ["--assume-applied", "--capture"]
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
    assert recover(operator, target) == ["--assume-applied", "--capture"]
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

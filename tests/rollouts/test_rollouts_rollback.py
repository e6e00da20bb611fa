"""`rollout rollback`: the guide's emergency sequence, from state or from the plan alone.

Plans are plans/brain-api-demo.yaml with 0s bakes and no analysis (conftest.derive_plan);
the dead-target tests also give the target a short retry policy, so that giving up takes
a second instead of minutes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import CliResult
from tests.rollouts.conftest import (
    EMERGENCY_SEQUENCE,
    FLAG,
    ON_EVERY_STORE,
    Operator,
    Target,
    derive_plan,
    killed_after,
    read_until,
    serve,
)

SHORT_RETRY = "{attempts: 2, backoff: 10ms, max_backoff: 20ms, deadline: 300ms}"


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A loopback URL that refuses connections: the port is bound, never listened on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@ON_EVERY_STORE
def test_rollback_mid_rollout_sends_the_emergency_sequence(operator: Operator, target: Target,
                                                          fast_plan: Path):
    assert operator("start", str(fast_plan)).code == 3      # 10% at canary-10's gate
    before = len(target.changes())

    result = operator("rollback", "--yes", "--reason", "error rate above 10%")

    assert result.code == 1, result.err
    assert "rolled-back" in result.out
    assert target.changes()[before:] == EMERGENCY_SEQUENCE
    state = target.state()
    assert state["flags"].get(FLAG) is False
    assert state["abTest"]["status"] == "stopped"
    assert state["modernTrafficPercentage"] == 0
    status = operator.status()
    assert (status["phase"], status["exit_code"]) == ("rolled-back", 1)
    assert status["reason"] == "error rate above 10%"


def test_rollback_twice_is_safe_and_sends_the_sequence_again(operator: Operator,
                                                            target: Target, fast_plan: Path):
    assert operator("start", str(fast_plan)).code == 3
    assert operator("rollback", "--yes").code == 1
    before = len(target.changes())
    [rolled_back] = operator.rollout_ids()

    again = operator("rollback", rolled_back, "--yes")     # named: it is no longer active

    assert again.code == 1, again.err
    assert again.err == ""
    assert target.changes()[before:] == EMERGENCY_SEQUENCE
    assert target.state()["flags"].get(FLAG) is False
    rounds = [e for e in operator.events() if e["type"] == "rollback-started"]
    assert len(rounds) == 2


def test_rollback_without_an_id_touches_no_finished_rollout(operator: Operator,
                                                           target: Target, fast_plan: Path):
    assert operator("run", str(fast_plan), "--auto-approve").code == 0
    [done] = operator.rollout_ids()
    journal, calls = operator.events(), len(target.changes())

    refused = operator("rollback", "--yes")

    assert refused.code == 2
    assert (f"no active rollout: the newest, {done}, has ended succeeded (every stage "
            f"completed); name one; rollouts: {done}") in refused.err
    assert (operator.events(), len(target.changes())) == (journal, calls)

    # A regression found after promotion: rolling back the finished one, by name.
    named = operator("rollback", done, "--yes", "--reason", "regression after promotion")
    assert named.code == 1, named.err
    assert target.changes()[calls:] == EMERGENCY_SEQUENCE
    assert (operator.status()["phase"], operator.status()["reason"]) == (
        "rolled-back", "regression after promotion")


def _on_a_terminal(operator: Operator, *args: str) -> tuple[subprocess.Popen[str], int]:
    """`rollout ARGS...` with a pseudo-terminal for stdin, as a person at a keyboard runs it;
    returns the process and the terminal's end to type into."""
    keyboard, stdin = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "rollout_cli", *args, "--state-dir", str(operator.state_dir)],
        cwd=operator.cwd, env=operator.env(), stdin=stdin, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    os.close(stdin)
    return process, keyboard


@pytest.mark.parametrize("answer", ["n", "y"])
def test_rollback_on_a_terminal_names_the_rollout_and_the_calls_before_asking(
        operator: Operator, target: Target, fast_plan: Path, answer: str):
    assert operator("start", str(fast_plan)).code == 3
    [rollout_id] = operator.rollout_ids()
    before = len(target.changes())

    asking, keyboard = _on_a_terminal(operator, "rollback")
    try:
        prompt = read_until(asking, r"Roll back\? \[y/N\]", timeout=30)
        os.write(keyboard, f"{answer}\n".encode())
        answered = operator.finish(asking)
    finally:
        os.close(keyboard)

    assert f"Rolling back rollout {rollout_id} (plan brain-api-demo, waiting-gate at " \
        "canary-10)." in prompt
    assert "  4. POST " in prompt and "/api/admin/alerts/emergency  (send alerts)" in prompt
    listed = [line.split(None, 1)[1].split("  (")[0] for line in prompt.splitlines()
              if line.lstrip()[:2].rstrip(".").isdigit()]
    assert listed == [f"{method} {target.url}{path}" for method, path, _ in EMERGENCY_SEQUENCE]
    if answer == "n":
        assert answered.code == 2
        assert len(target.changes()) == before
        assert operator.status()["phase"] == "waiting-gate"
    else:
        assert answered.code == 1, answered.err
        assert target.changes()[before:] == EMERGENCY_SEQUENCE


def test_rollback_from_the_plan_on_a_terminal_says_there_is_no_state(
        operator: Operator, target: Target, fast_plan: Path):
    asking, keyboard = _on_a_terminal(operator, "rollback", "--plan", str(fast_plan))
    try:
        prompt = read_until(asking, r"Roll back\? \[y/N\]", timeout=30)
        os.write(keyboard, b"n\n")
        declined = operator.finish(asking)
    finally:
        os.close(keyboard)

    assert "Rolling back plan brain-api-demo from the plan file alone" in prompt
    assert f"  4. POST {target.url}/api/admin/alerts/emergency  (send alerts)" in prompt
    assert declined.code == 2
    assert target.changes() == [] and operator.rollout_ids() == []


def test_rollback_from_the_plan_alone_with_no_state(operator: Operator, target: Target,
                                                   fast_plan: Path):
    assert not operator.state_dir.exists()

    result = operator("rollback", "--plan", str(fast_plan), "--yes")

    assert result.code == 1, result.err
    assert target.changes() == EMERGENCY_SEQUENCE
    assert target.state()["flags"].get(FLAG) is False
    events = operator.events()
    assert events[0]["type"] == "created" and events[0]["stateless"] is True
    assert events[-1]["type"] == "rolled-back"


@ON_EVERY_STORE
def test_rollback_from_the_plan_finds_the_active_rollout(operator: Operator, target: Target,
                                                        fast_plan: Path):
    assert operator("start", str(fast_plan)).code == 3

    result = operator("rollback", "--plan", str(fast_plan), "--yes")

    assert result.code == 1, result.err
    assert len(operator.rollout_ids()) == 1
    assert operator.status()["phase"] == "rolled-back"


def test_rollback_of_a_dead_target_fails_loudly(operator: Operator, dead_url: str,
                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    plan = derive_plan(tmp_path / "short-retry.yaml", retry=SHORT_RETRY)
    monkeypatch.setenv("BRAIN_API_URL", dead_url)

    result = operator("rollback", "--plan", str(plan), "--yes")

    assert result.code == 5, result.out + result.err
    assert "ROLLBACK INCOMPLETE" in result.out
    for method, path, _ in EMERGENCY_SEQUENCE:
        assert f"{method} {dead_url}{path}: connect error" in result.out
    status = operator.status()
    assert (status["phase"], status["exit_code"]) == ("rollback-failed", 5)
    assert len(status["rollback_failures"]) == 4


def test_rollback_when_the_target_went_down_mid_rollout(operator: Operator, dead_url: str,
                                                       tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch):
    plan = derive_plan(tmp_path / "short-retry.yaml", retry=SHORT_RETRY)
    with serve() as target:
        monkeypatch.setenv("BRAIN_API_URL", target.url)
        assert operator("start", str(plan)).code == 3
    monkeypatch.setenv("BRAIN_API_URL", dead_url)      # the target is gone

    result = operator("rollback", "--yes")

    assert result.code == 5, result.out + result.err
    assert "ROLLBACK INCOMPLETE" in result.out
    assert "feature-flags/disable: connect error" in result.out
    assert operator.status()["phase"] == "rollback-failed"



@ON_EVERY_STORE
def test_rollback_takes_over_the_lock_of_the_rollouts_dead_process(
        operator: Operator, target: Target, fast_plan: Path,
        rollout: Callable[..., CliResult], tmp_path: Path):
    # The 3 a.m. case: the process that drove the rollout to 10% was killed holding the
    # rollout's lock, and nobody is around to unlock it.
    probe = Operator(rollout, tmp_path / "probe", tmp_path)
    assert probe("start", str(fast_plan)).code == 3
    at_gate = len(probe.events())                       # its last event: gate-waiting
    killed = operator.process("start", str(fast_plan), env=killed_after(at_gate))
    assert killed.code == -9
    assert operator.events()[-1]["type"] == "gate-waiting"
    [stale] = operator.store.held_locks()
    before = len(target.changes())

    result = operator("rollback", "--yes", "--lock-timeout", "0s")

    assert result.code == 1, result.out + result.err
    assert target.changes()[before:] == EMERGENCY_SEQUENCE
    assert target.state()["flags"].get(FLAG) is False
    notes = [e["text"] for e in operator.events() if e["type"] == "note"]
    assert notes == [f"took over the stale lock {stale['id']} of {stale['who']} pid "
                     f"{stale['pid']} (start, created {stale['created']})"]
    assert operator.store.held_locks() == []


ALERT = "/api/admin/alerts/emergency"


def _interrupted_rollback(operator: Operator, target: Target, plan: Path) -> str:
    """A rollout whose rollback was killed while its alert (non-idempotent) was in flight:
    what `rollout run` leaves when SIGKILLed there, journaled through the store's API."""
    assert operator("start", str(plan)).code == 3
    rollout_id = operator.rollout_ids()[0]
    journal = operator.store.open(rollout_id).journal
    now = operator.events()[-1]["time"]
    journal.append({"type": "rollback-started", "who": "analysis",
                    "reason": "stage analysis: failed (1) > failure_limit (0): boom"}, time=now)
    for step, (method, path, _) in enumerate(EMERGENCY_SEQUENCE):
        call_id = f"rollback#1:{step}"
        journal.append({"type": "intent", "call_id": call_id, "kind": "rollback",
                        "stage": None, "step": step, "line": f"{method} {target.url}{path}",
                        "idempotent": path != ALERT}, time=now)
        if path != ALERT:
            journal.append({"type": "outcome", "call_id": call_id, "ok": True,
                            "status": 200}, time=now)
    return rollout_id


def _alerts(target: Target) -> int:
    return sum(1 for _, path, _ in target.changes() if path == ALERT)


def test_rollback_continues_an_interrupted_rollback_without_resending_or_losing_its_cause(
        operator: Operator, target: Target, strict_plan: Path):
    rollout_id = _interrupted_rollback(operator, target, strict_plan)

    result = operator("rollback", "--yes")

    assert result.code == 1, result.out + result.err
    assert _alerts(target) == 0                 # in flight when killed: not sent again
    events = operator.events(rollout_id)
    assert [e["type"] for e in events].count("rollback-started") == 1
    status = operator.status()
    assert status["phase"] == "rolled-back"
    assert status["reason"].startswith("stage analysis: failed (1) > failure_limit (0): boom")
    assert "requested by" in status["reason"]
    assert ALERT in status["reason"] and "not re-sent" in status["reason"]


def test_rollback_resend_sends_the_interrupted_call_once_more(
        operator: Operator, target: Target, strict_plan: Path):
    _interrupted_rollback(operator, target, strict_plan)

    result = operator("rollback", "--yes", "--resend")

    assert result.code == 1, result.out + result.err
    assert _alerts(target) == 1
    assert operator.status()["reason"].startswith("stage analysis: failed (1)")


def test_a_rollback_step_feeds_later_ones_with_what_it_captured(
        operator: Operator, target: Target, tmp_path: Path):
    plan = derive_plan(tmp_path / "captures.yaml")
    text = plan.read_text().replace("rollback:\n", """rollback:
  - request: GET /api/admin/ab-testing/results
    capture: {strategy_id: testId}
  - request: POST /api/admin/dashboard/update-baselines
    json: {testId: "{{ strategy_id }}"}
    idempotent: true
""", 1)
    plan.write_text(text)
    target_start = {"testId": "live-test", "rolloutPercentage": 10, "enabled": True}
    import httpx

    httpx.post(f"{target.url}/api/admin/ab-testing/start", json=target_start).raise_for_status()

    result = operator("rollback", "--plan", str(plan), "--yes")

    assert result.code == 1, result.out + result.err
    baselines = [body for _, path, body in target.changes()
                 if path == "/api/admin/dashboard/update-baselines"]
    assert baselines == [{"testId": "live-test"}]

"""`rollout rollback`: the guide's emergency sequence, from state or from the plan alone.

Plans are plans/brain-api-demo.yaml with 0s bakes and no analysis (conftest.derive_plan);
the dead-target tests also give the target a short retry policy, so that giving up takes
a second instead of minutes.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import CliResult
from tests.rollouts.conftest import (
    EMERGENCY_SEQUENCE,
    FLAG,
    Operator,
    Target,
    derive_plan,
    killed_after,
    serve,
)

SHORT_RETRY = "{attempts: 2, backoff: 10ms, max_backoff: 20ms, deadline: 300ms}"


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A loopback URL that refuses connections: the port is bound, never listened on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


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

    again = operator("rollback", "--yes")

    assert again.code == 1, again.err
    assert again.err == ""
    assert target.changes()[before:] == EMERGENCY_SEQUENCE
    assert target.state()["flags"].get(FLAG) is False
    rounds = [e for e in operator.events() if e["type"] == "rollback-started"]
    assert len(rounds) == 2


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
    [lock_file] = operator.state_dir.glob("rollouts/*/lock.json")
    stale = json.loads(lock_file.read_text())
    before = len(target.changes())

    result = operator("rollback", "--yes", "--lock-timeout", "0s")

    assert result.code == 1, result.out + result.err
    assert target.changes()[before:] == EMERGENCY_SEQUENCE
    assert target.state()["flags"].get(FLAG) is False
    notes = [e["text"] for e in operator.events() if e["type"] == "note"]
    assert notes == [f"took over the stale lock {stale['id']} of {stale['who']} pid "
                     f"{stale['pid']} (start, created {stale['created']})"]
    assert not lock_file.exists()

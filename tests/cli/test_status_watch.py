"""`rollout status --watch`: a status each time the rollout changes, until it ends."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from rollout_cli import operations
from tests.conftest import CliResult
from tests.rollouts.conftest import Target


def test_watch_reports_until_the_rollout_ends(
        rollout: Callable[..., CliResult], target: Target, fast_plan: Path, tmp_path: Path):
    state = tmp_path / "state"
    assert rollout("--state", str(state), "start", str(fast_plan)).code == 3   # at a gate
    naps: list[float] = []

    def sleep(seconds: float) -> None:    # nobody waits: the operator acts on the 2nd nap
        naps.append(seconds)
        if len(naps) == 2:
            operations.rollback(operations.Context.at(state), None, None, "drill")

    ctx = operations.Context.at(state, sleep=sleep)
    phases = [report.state.phase for report in operations.watch(ctx, None, every=5.0)]

    assert phases == ["waiting-gate", "waiting-gate", "rolled-back"]
    assert naps == [5.0, 5.0]


def test_watching_a_rollout_that_ended_prints_it_once_and_exits_with_its_code(
        rollout: Callable[..., CliResult], target: Target, fast_plan: Path, tmp_path: Path):
    state = str(tmp_path / "state")
    assert rollout("--state", state, "start", str(fast_plan)).code == 3
    assert rollout("--state", state, "rollback", "--yes", "--reason", "drill").code == 1

    watched = rollout("--state", state, "status", "--watch", "--output", "jsonl")
    plain = rollout("--state", state, "status", "--watch")

    assert watched.code == plain.code == 1
    [line] = watched.out.splitlines()
    assert (json.loads(line)["type"], json.loads(line)["phase"]) == ("status", "rolled-back")
    assert plain.out.count("phase     rolled-back") == 1

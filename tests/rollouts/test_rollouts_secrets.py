"""The bearer token reaches the target and nowhere else: not the state dir, not the output.

The plan is plans/brain-api-demo.yaml with 0s bakes and no analysis (conftest.derive_plan);
its target sends `Authorization: Bearer ${BRAIN_API_TOKEN}` and lists BRAIN_API_TOKEN
under `secrets:`.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg_server import dump_schema
from tests.rollouts.conftest import ON_EVERY_STORE, Operator, Target, derive_plan, serve

SHORT_RETRY = "{attempts: 2, backoff: 10ms, max_backoff: 20ms, deadline: 300ms}"


@pytest.fixture
def token() -> str:
    return f"tok-{secrets.token_hex(16)}"


@pytest.fixture
def guarded(token: str, clean_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    """A sandbox that answers admin calls only with the bearer token."""
    with serve(token=token) as target:
        monkeypatch.setenv("BRAIN_API_URL", target.url)
        monkeypatch.setenv("BRAIN_API_TOKEN", token)
        yield target


def _state_holding(operator: Operator, text: str) -> list[str]:
    """Where the state holds ``text``: files of a directory, rows of a database."""
    if isinstance(operator.state_dir, Path):
        return [str(path) for path in operator.state_dir.rglob("*")
                if path.is_file() and text.encode() in path.read_bytes()]
    return [f"row of {table}" for table, row in dump_schema(operator.state_dir)
            if text in row]


@ON_EVERY_STORE
def test_the_token_is_used_and_never_stored_or_printed(
        operator: Operator, guarded: Target, token: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch):
    plan = derive_plan(tmp_path / "fast.yaml", retry=SHORT_RETRY)

    assert operator("run", str(plan), "--auto-approve").code == 0
    assert operator("start", str(plan)).code == 3
    assert operator("status").code == 3
    assert operator("status", "--output", "json").code == 3
    assert operator("rollback", "--yes", "--reason", "secrets drill").code == 1
    assert operator("rollback", "--plan", str(plan), "--yes").code == 1
    assert operator("history").code == 0
    assert operator("history", "--output", "json").code == 0
    assert operator("list", "--output", "json").code == 0
    dry_run = operator.in_process("plan", str(plan))      # takes no --state-dir
    assert dry_run.code == 0
    assert "Authorization: ***" in dry_run.out
    operator.outputs += [dry_run.out, dry_run.err]
    assert operator.process("rollback", "--plan", str(plan), "--yes", "--output", "json").code == 1
    with socket.socket() as dead:                       # failures print the request too
        dead.bind(("127.0.0.1", 0))
        monkeypatch.setenv("BRAIN_API_URL", f"http://127.0.0.1:{dead.getsockname()[1]}")
        assert operator("rollback", "--plan", str(plan), "--yes").code == 5

    calls = guarded.calls()
    assert calls and all(call["status"] < 400 for call in calls)  # the token got them in
    assert len(operator.rollout_ids()) == 5
    assert _state_holding(operator, token) == []
    assert [out for out in operator.outputs if token in out] == []


def test_a_wrong_token_is_refused_by_the_target(operator: Operator, guarded: Target,
                                                fast_plan: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BRAIN_API_TOKEN", "not-the-token")

    result = operator("start", str(fast_plan))

    # The first admin call fails with 401, so the rollout rolls back, and the rollback's
    # calls are refused too: rollback-failed, exit 5.
    assert result.code == 5, result.out + result.err
    assert "FAILED 401" in result.out
    assert operator.status()["phase"] == "rollback-failed"
    assert "not-the-token" not in "".join(operator.outputs)

"""`rollout state copy FROM TO` from the command line (the logic: tests/store/test_store_copy.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rollout_cli.store import open_store
from tests.conftest import CliResult
from tests.pg_server import PASSWORD
from tests.rollouts.conftest import Target


def test_the_command_copies_a_started_rollout_that_then_carries_on_in_the_database(
        rollout: Callable[..., CliResult], target: Target, fast_plan: Path, tmp_path: Path,
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert rollout("--state", "files", "start", str(fast_plan)).code == 3

    copied = rollout("state", "copy", "files", pg_url)

    assert copied.code == 0, copied.err
    [meta] = open_store(tmp_path / "files").list()
    assert copied.out.startswith("copied 1 rollout (")
    assert f"from files to {pg_url.replace(PASSWORD, '***')}" in copied.out
    assert PASSWORD not in copied.out + copied.err
    advanced = rollout("--state", pg_url, "advance")
    assert advanced.code == 3, advanced.err
    assert meta.id in advanced.out
    again = rollout("state", "copy", "files", pg_url)
    assert again.code == 2
    assert f"already has rollout {meta.id}; nothing was copied" in again.err
    assert PASSWORD not in again.out + again.err

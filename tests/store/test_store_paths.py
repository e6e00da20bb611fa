"""Where the state root is: --state-dir, then $ROLLOUT_STATE_DIR, then ./.rollout."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollout_cli.store import STATE_DIR_ENV, resolve_state_dir


def test_the_flag_wins_over_the_environment(tmp_path: Path) -> None:
    env = {STATE_DIR_ENV: "/from/env"}

    assert resolve_state_dir("/from/flag", env=env, cwd=tmp_path) == Path("/from/flag")


def test_the_environment_wins_over_the_default(tmp_path: Path) -> None:
    assert resolve_state_dir(None, env={STATE_DIR_ENV: "/from/env"}) == Path("/from/env")


def test_the_default_is_dot_rollout_in_the_working_directory(tmp_path: Path) -> None:
    assert resolve_state_dir(None, env={}, cwd=tmp_path) == tmp_path / ".rollout"
    assert resolve_state_dir(None, env={STATE_DIR_ENV: ""}, cwd=tmp_path) == tmp_path / ".rollout"


def test_relative_paths_are_taken_from_the_working_directory(tmp_path: Path) -> None:
    assert resolve_state_dir("state", env={}, cwd=tmp_path) == tmp_path / "state"
    env = {STATE_DIR_ENV: "rel/state"}
    assert resolve_state_dir(None, env=env, cwd=tmp_path) == tmp_path / "rel/state"


def test_the_real_environment_is_read_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "env-state"))

    assert resolve_state_dir(None) == tmp_path / "env-state"

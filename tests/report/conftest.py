"""One real journal for the report tests: the degrade-at-50 demo, run once per session
(it takes ~12 s) through the real CLI, then reported on by each test."""

from __future__ import annotations

from pathlib import Path

import pytest

_STATE: dict[str, Path] = {}


@pytest.fixture
def degraded_state(rollout, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if "dir" not in _STATE:
        state = tmp_path_factory.mktemp("report-state")
        result = rollout("demo", "--scenario", "degrade-at-50", "--seed", "2",
                         "--state-dir", str(state))
        assert result.code == 1, result.err
        _STATE["dir"] = state
    return _STATE["dir"]

"""Fixtures for the state store tests: a fresh store and a rollout in it."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.context import ForkContext
from pathlib import Path

import pytest

from rollout_cli.store import DirectoryStore, RolloutDir, RolloutMeta

NOW = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)

MakeMeta = Callable[..., RolloutMeta]


@pytest.fixture
def make_meta(tmp_path: Path) -> MakeMeta:
    """Metadata for a new rollout of a plan file written under tmp_path."""

    def make(plan_name: str = "brain-api", now: datetime = NOW) -> RolloutMeta:
        plan_file = tmp_path / f"{plan_name}.yaml"
        plan_file.write_text(f"version: 1\nname: {plan_name}\n")
        return RolloutMeta.for_plan(plan_name, plan_file, now)

    return make


@pytest.fixture
def store(tmp_path: Path) -> DirectoryStore:
    return DirectoryStore(tmp_path / "state")


@pytest.fixture
def rollout_dir(store: DirectoryStore, make_meta: MakeMeta) -> RolloutDir:
    return store.create(make_meta())


@pytest.fixture
def processes() -> ForkContext:
    # fork: children inherit the test module, so targets need no import dance.
    return multiprocessing.get_context("fork")

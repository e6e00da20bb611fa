"""`rollout state copy FROM TO` (store/copy.py): rollouts move between any two stores whole,
byte for byte, and never over rollouts the target already has."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollout_cli.errors import LockedError, StateError
from rollout_cli.store import open_store
from rollout_cli.store.copy import copy_rollouts
from tests.store.conftest import NOW, MakeMeta


def _files(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*"))
            if path.is_file() and not path.name.startswith(".")}


def _fill(root: Path, make_meta: MakeMeta) -> list[str]:
    store = open_store(root)
    active = store.start(make_meta("brain-api"), details={"plan_file": "plans/brain.yaml"})
    for n in range(5):
        active.journal.append({"type": "note", "text": f"é {n}", "values": {"rate": 0.1 * n}},
                              time=1_700_000_000.123 + n)
    active.save_snapshot({"stage": 2, "captures": {"test_id": "t-1"}}, seq=4)
    ended = store.create(make_meta("search-api", NOW.replace(hour=9)))
    ended.journal.append({"type": "succeeded"}, time=1_700_000_100.5)
    return [ended.id, active.id]


def test_a_directory_copied_to_postgres_and_back_is_byte_for_byte_the_same(
        tmp_path: Path, pg_url: str, make_meta: MakeMeta) -> None:
    ids = _fill(tmp_path / "first", make_meta)

    there = copy_rollouts(open_store(tmp_path / "first"), open_store(pg_url))
    back = copy_rollouts(open_store(pg_url), open_store(tmp_path / "back"))

    assert there.rollouts == back.rollouts == ids
    assert there.events == back.events == 8
    assert there.claims == back.claims == ["brain-api"]
    assert _files(tmp_path / "back") == _files(tmp_path / "first")
    database = open_store(pg_url)
    assert [meta.id for meta in database.find_active()] == [ids[1]]
    assert database.open(ids[1]).load_snapshot().state == {  # type: ignore[union-attr]
        "stage": 2, "captures": {"test_id": "t-1"}}


def test_rollouts_the_target_has_are_refused_and_nothing_is_copied(
        tmp_path: Path, pg_url: str, make_meta: MakeMeta) -> None:
    ids = _fill(tmp_path / "first", make_meta)
    copy_rollouts(open_store(tmp_path / "first"), open_store(pg_url), [ids[0]])

    with pytest.raises(StateError, match=f"the database already has rollout {ids[0]};"
                                         " nothing was copied"):
        copy_rollouts(open_store(tmp_path / "first"), open_store(pg_url),
                      target_name="the database")

    assert [meta.id for meta in open_store(pg_url).list()] == [ids[0]]
    assert copy_rollouts(open_store(tmp_path / "first"), open_store(pg_url),
                         [ids[1][:-2]]).rollouts == [ids[1]]     # a prefix names it


def test_a_rollout_a_command_holds_is_not_copied_under_it(
        tmp_path: Path, pg_url: str, make_meta: MakeMeta) -> None:
    [_, active] = _fill(tmp_path / "first", make_meta)

    with open_store(tmp_path / "first").open(active).lock("advance"), pytest.raises(
            LockedError, match=f"rollout {active} is locked"):
        copy_rollouts(open_store(tmp_path / "first"), open_store(pg_url), [active])
    assert open_store(pg_url).list() == []

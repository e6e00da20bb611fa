"""The directory store's rollouts: ids and digests, private metadata files, creation a crash
cannot half-do, and the claims that a killed start leaves (see test_store_contract.py)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from multiprocessing.context import ForkContext
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from rollout_cli.errors import StateError
from rollout_cli.store import DirectoryStore, PlanClaimed, RolloutMeta, new_rollout_id, plan_digest

NOW = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
MakeMeta = Callable[..., RolloutMeta]


def _start(
    root: str, meta: RolloutMeta, start: Barrier, results: Queue[tuple[str, bool]]
) -> None:
    store = DirectoryStore(Path(root))
    start.wait(timeout=60)
    try:
        store.start(meta)
    except PlanClaimed:
        results.put((meta.id, False))
    else:
        results.put((meta.id, True))


def test_rollout_id_is_plan_time_and_four_hex() -> None:
    rollout_id = new_rollout_id("brain-api", datetime(2024, 5, 1, 9, 5, 7))

    assert re.fullmatch(r"brain-api-20240501-090507-[0-9a-f]{4}", rollout_id)


def test_rollout_ids_from_different_time_zones_sort_by_utc() -> None:
    paris = timezone(timedelta(hours=2))
    earlier = new_rollout_id("p", datetime(2024, 5, 1, 11, 0, tzinfo=paris))  # 09:00 UTC
    later = new_rollout_id("p", datetime(2024, 5, 1, 10, 0, tzinfo=UTC))

    assert earlier.startswith("p-20240501-090000-")
    assert earlier < later


@pytest.mark.parametrize("name", ["../etc", "a/b", "", ".hidden", "with space"])
def test_a_plan_name_that_cannot_be_a_file_name_is_refused(name: str) -> None:
    with pytest.raises(StateError, match="cannot name a state file"):
        new_rollout_id(name, NOW)


def test_plan_digest_is_the_sha256_of_the_file_bytes(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_bytes(b"version: 1\nname: brain-api\n")

    assert plan_digest(plan) == hashlib.sha256(b"version: 1\nname: brain-api\n").hexdigest()


def test_plan_digest_of_a_missing_file_is_a_state_error(tmp_path: Path) -> None:
    with pytest.raises(StateError, match=r"could not read plan file .*missing.yaml"):
        plan_digest(tmp_path / "missing.yaml")


def test_create_writes_private_metadata_that_reads_back(
    store: DirectoryStore, tmp_path: Path, make_meta: MakeMeta
) -> None:
    meta = make_meta()

    rollout = store.create(meta)

    assert rollout.path == store.root / "rollouts" / meta.id
    assert rollout.meta == meta
    assert meta.created_by.count("@") == 1
    assert meta.plan_path == str((tmp_path / "brain-api.yaml").resolve())
    on_disk = json.loads((rollout.path / "rollout.json").read_text())
    assert on_disk["created"] == "2024-05-01T10:00:00Z"
    assert on_disk["plan_digest"] == plan_digest(tmp_path / "brain-api.yaml")
    for private_dir in (store.root, store.root / "rollouts", rollout.path):
        assert private_dir.stat().st_mode & 0o777 == 0o700
    assert (rollout.path / "rollout.json").stat().st_mode & 0o777 == 0o600


def test_a_half_created_rollout_is_invisible(store: DirectoryStore, make_meta: MakeMeta) -> None:
    meta = make_meta()
    store.create(meta)
    (store.root / "rollouts" / f".creating-{meta.id}x-0000").mkdir()  # a crash mid-create

    assert [m.id for m in store.list()] == [meta.id]
    assert store.open(meta.id[:-1]).id == meta.id


def test_damaged_metadata_is_named_in_the_error(store: DirectoryStore, make_meta: MakeMeta) -> None:
    rollout = store.create(make_meta())
    (rollout.path / "rollout.json").write_text('{"id": "x"}')

    with pytest.raises(StateError, match=r"rollout\.json lacks plan_name, plan_path"):
        store.list()


def test_a_claim_whose_rollout_never_came_to_be_is_skipped_then_cleared(
    store: DirectoryStore, make_meta: MakeMeta
) -> None:
    # What a start killed between its claim and publishing its rollout leaves.
    dead = "brain-api-20240101-000000-dead"
    (store.root / "active").mkdir(parents=True)
    (store.root / "active" / "brain-api").write_text(f"{dead}\n")
    (store.root / "rollouts" / f".creating-{dead}-0123abcd").mkdir(parents=True)

    assert store.find_active() == []
    rollout = store.start(make_meta())

    assert [meta.id for meta in store.find_active()] == [rollout.id]
    assert [e["text"] for e in list(rollout.journal.events())[1:]] == [
        f"cleared the claim of rollout {dead}, whose start was killed before it was created"]
    assert [p.name for p in (store.root / "rollouts").iterdir()] == [rollout.id]


def test_a_claim_that_names_no_rollout_is_explained(
    store: DirectoryStore, make_meta: MakeMeta
) -> None:
    (store.root / "active").mkdir(parents=True)
    (store.root / "active" / "brain-api").write_text("../not a rollout\n")

    with pytest.raises(PlanClaimed, match="which no longer exists"):
        store.start(make_meta())


def test_a_rollout_published_without_events_is_set_aside_by_the_next_start(
    store: DirectoryStore, make_meta: MakeMeta
) -> None:
    # What an older version left when it was killed right after creating a rollout.
    old = store.start(make_meta())
    old.journal.path.unlink()

    new = store.start(make_meta(now=NOW + timedelta(hours=1)))

    assert [meta.id for meta in store.list()] == [new.id]
    assert (store.root / "rollouts" / f".abandoned-{old.id}" / "rollout.json").exists()
    assert "whose start was killed before its first event" in list(new.journal.events())[-1][
        "text"]


def test_concurrent_starts_have_exactly_one_winner(
    store: DirectoryStore, make_meta: MakeMeta, processes: ForkContext
) -> None:
    for round_no in range(5):
        plan = f"plan-{round_no}"
        metas = [make_meta(plan, now=NOW + timedelta(seconds=n)) for n in range(2)]
        start, results = processes.Barrier(2), processes.Queue()
        racers = [
            processes.Process(target=_start, args=(str(store.root), meta, start, results))
            for meta in metas
        ]
        for racer in racers:
            racer.start()
        outcomes = dict(results.get(timeout=60) for _ in racers)
        for racer in racers:
            racer.join()

        winners = [rollout_id for rollout_id, won in outcomes.items() if won]
        assert len(winners) == 1
        assert (store.root / "active" / plan).read_text() == f"{winners[0]}\n"
        assert [meta.id for meta in store.list() if meta.plan_name == plan] == winners


def test_meta_round_trips_through_json(tmp_path: Path, make_meta: MakeMeta) -> None:
    meta = make_meta()

    assert RolloutMeta.from_json(meta.to_json(), tmp_path / "rollout.json") == meta

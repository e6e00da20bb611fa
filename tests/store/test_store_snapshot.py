"""Snapshots: atomic replacement, and snapshot + journal tail = the whole journal."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from rollout_cli.errors import StateError
from rollout_cli.store import RolloutDir, Snapshot, SnapshotUnreadable
from rollout_cli.store.snapshot import load_snapshot, save_snapshot


def fold(state: dict[str, Any], events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A stand-in for the engine: the current stage and the measurements seen."""
    state = {**state, "measured": list(state.get("measured", []))}
    for event in events:
        if event["type"] == "stage-entered":
            state["stage"] = event["stage"]
        elif event["type"] == "measured":
            state["measured"].append(event["value"])
    return state


def journal_stages(rollout_dir: RolloutDir) -> None:
    for n, stage in enumerate(["canary-10", "canary-25", "canary-50"]):
        rollout_dir.journal.append({"type": "stage-entered", "stage": stage}, time=n * 10.0)
        rollout_dir.journal.append({"type": "measured", "value": n}, time=n * 10.0 + 5)


def test_snapshot_round_trip_is_private(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    save_snapshot(path, {"stage": "canary-10", "captured": {"test_id": "t1"}}, seq=7)

    assert load_snapshot(path) == Snapshot(7, {"stage": "canary-10", "captured": {"test_id": "t1"}})
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_temp_file_left_by_a_crash_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    save_snapshot(path, {"stage": "canary-10"}, seq=3)
    # A writer killed before os.replace leaves its half-written temp file behind.
    (tmp_path / ".snapshot.json.0badf00d.tmp").write_bytes(b'{"format":1,"seq":9,"sta')

    assert load_snapshot(path) == Snapshot(3, {"stage": "canary-10"})
    save_snapshot(path, {"stage": "canary-25"}, seq=5)
    assert load_snapshot(path) == Snapshot(5, {"stage": "canary-25"})


def test_replacing_a_snapshot_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    for seq in range(5):
        save_snapshot(path, {"n": seq}, seq=seq)

    assert [p.name for p in tmp_path.iterdir()] == ["snapshot.json"]


def test_a_state_that_is_not_json_is_refused_and_the_old_snapshot_kept(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    save_snapshot(path, {"stage": "canary-10"}, seq=3)

    with pytest.raises(ValueError, match="cannot be saved as JSON"):
        save_snapshot(path, {"stage": object()}, seq=4)
    assert load_snapshot(path) == Snapshot(3, {"stage": "canary-10"})


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (b'{"format":1,"seq":3,"st', "not valid JSON"),
        (b"[]", "holds a JSON list"),
        (b'{"format":2,"seq":3,"state":{}}', "has format 2, not 1"),
        (b'{"format":1,"seq":"3","state":{}}', "lacks an integer 'seq'"),
    ],
)
def test_an_unreadable_snapshot_says_what_is_wrong(
    tmp_path: Path, content: bytes, complaint: str
) -> None:
    path = tmp_path / "snapshot.json"
    path.write_bytes(content)

    with pytest.raises(SnapshotUnreadable, match=complaint):
        load_snapshot(path)


def test_snapshot_plus_tail_equals_replaying_the_whole_journal(rollout_dir: RolloutDir) -> None:
    journal_stages(rollout_dir)
    covered = list(rollout_dir.journal.events())[:3]
    rollout_dir.save_snapshot(fold({}, covered), seq=3)

    snapshot = rollout_dir.load_snapshot()

    assert snapshot is not None and snapshot.seq == 3
    tail = list(rollout_dir.journal.events(after_seq=snapshot.seq))
    assert [event["seq"] for event in tail] == [4, 5, 6, 7]  # seq 1 is the created event
    assert fold(snapshot.state, tail) == fold({}, rollout_dir.journal.events())
    assert fold(snapshot.state, tail) == {"stage": "canary-50", "measured": [0, 1, 2]}


def test_an_unreadable_snapshot_reads_as_none_so_the_whole_journal_is_replayed(
    rollout_dir: RolloutDir
) -> None:
    journal_stages(rollout_dir)
    assert rollout_dir.load_snapshot() is None
    (rollout_dir.path / "snapshot.json").write_bytes(b"\0\0\0\0")

    assert rollout_dir.load_snapshot() is None


def test_a_snapshot_ahead_of_its_journal_is_an_error(rollout_dir: RolloutDir) -> None:
    journal_stages(rollout_dir)
    rollout_dir.save_snapshot({"stage": "full"}, seq=40)

    with pytest.raises(StateError, match="ends at seq 7 but the snapshot covers seq 40"):
        list(rollout_dir.journal.events(after_seq=rollout_dir.load_snapshot().seq))


def test_snapshot_file_holds_the_state_and_the_seq_it_covers(rollout_dir: RolloutDir) -> None:
    rollout_dir.save_snapshot({"stage": "canary-10"}, seq=2)

    data = json.loads((rollout_dir.path / "snapshot.json").read_text())
    assert data == {"format": 1, "seq": 2, "state": {"stage": "canary-10"}}

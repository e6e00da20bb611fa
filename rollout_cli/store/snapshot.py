"""The snapshot: the engine's folded state up to a journal seq, replaced atomically.

A snapshot only saves replay time; the journal stays the record. So an unreadable
snapshot is read as none (a full replay), never a failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rollout_cli.errors import StateError
from rollout_cli.store.atomic import encode_json, read_json_object, state_write, write_atomic
from rollout_cli.store.protocol import Snapshot

SNAPSHOT_FORMAT = 1


class SnapshotUnreadable(StateError):
    """``snapshot.json`` exists but does not hold a snapshot this version can use."""


def encode_snapshot(state: Mapping[str, Any], seq: int) -> bytes:
    """The snapshot as stored (by every store); ValueError for a bad seq or a state that
    is not JSON."""
    if type(seq) is not int or seq < 0:
        raise ValueError(f"a snapshot covers a journal seq >= 0, got {seq!r}")
    try:
        return encode_json({"format": SNAPSHOT_FORMAT, "seq": seq, "state": dict(state)})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"snapshot state cannot be saved as JSON: {exc}") from exc


def decode_snapshot(data: Mapping[str, Any], source: object) -> Snapshot:
    """The snapshot ``encode_snapshot`` stored; SnapshotUnreadable naming ``source``."""
    seq, state, version = data.get("seq"), data.get("state"), data.get("format")
    if version != SNAPSHOT_FORMAT:
        raise SnapshotUnreadable(f"snapshot {source} has format {version!r}, not {SNAPSHOT_FORMAT}")
    if type(seq) is not int or seq < 0 or not isinstance(state, dict):
        raise SnapshotUnreadable(f"snapshot {source} lacks an integer 'seq' and a 'state' object")
    return Snapshot(seq=seq, state=state)


def save_snapshot(path: Path, state: Mapping[str, Any], seq: int) -> None:
    data = encode_snapshot(state, seq)
    with state_write(f"write snapshot {path}"):
        write_atomic(path, data)


def load_snapshot(path: Path) -> Snapshot | None:
    """The snapshot in ``path``, None if there is none, SnapshotUnreadable if damaged."""
    try:
        data = read_json_object(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SnapshotUnreadable(f"snapshot {path} is unreadable: {exc}") from exc
    return decode_snapshot(data, path)

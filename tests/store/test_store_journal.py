"""The journal: durable appends, streaming reads, and loud, repairable damage."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from multiprocessing.context import ForkContext
from pathlib import Path

import pytest

from rollout_cli.errors import StateError
from rollout_cli.store import JournalCorrupt, JournalFile, RolloutDir


def _append_many(path: str, count: int) -> None:
    journal = JournalFile(Path(path))
    for n in range(count):
        journal.append({"type": "measured", "n": n}, time=1000.0 + n)
    os._exit(0)  # no interpreter cleanup: only what append made durable counts


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_append_assigns_seq_and_reads_back_in_order(tmp_path: Path) -> None:
    journal = JournalFile(tmp_path / "journal.jsonl")
    stored = [
        journal.append({"type": "started", "plan": "brain-api"}, time=10.0),
        journal.append({"type": "stage-entered", "stage": "canary-10"}, time=11.5),
        journal.append({"type": "measured", "values": {"rate": 0.97}}, time=12),
    ]

    assert [event["seq"] for event in stored] == [1, 2, 3]
    assert stored[1] == {"seq": 2, "time": 11.5, "type": "stage-entered", "stage": "canary-10"}
    assert list(journal.events()) == stored
    assert journal.last_seq() == 3


def test_each_event_is_one_json_line_with_seq_time_type_first(tmp_path: Path) -> None:
    journal = JournalFile(tmp_path / "journal.jsonl")
    journal.append({"type": "note", "text": "line\nbreak"}, time=1.25)

    assert (
        journal.path.read_bytes() == b'{"seq":1,"time":1.25,"type":"note","text":"line\\nbreak"}\n'
    )


def test_journal_file_is_private(tmp_path: Path) -> None:
    journal = JournalFile(tmp_path / "journal.jsonl")
    journal.append({"type": "started"}, time=1.0)

    assert journal.path.stat().st_mode & 0o777 == 0o600


def test_lines_written_by_another_process_are_read_back(
    tmp_path: Path, processes: ForkContext
) -> None:
    path = tmp_path / "journal.jsonl"
    writer = processes.Process(target=_append_many, args=(str(path), 50))
    writer.start()
    writer.join()
    assert writer.exitcode == 0

    journal = JournalFile(path)
    events = list(journal.events())
    assert [event["seq"] for event in events] == list(range(1, 51))
    assert events[49]["n"] == 49
    # seq continues from the file, not from anything this process remembers
    assert journal.append({"type": "resumed"}, time=2000.0)["seq"] == 51


def test_missing_journal_reads_as_empty(tmp_path: Path) -> None:
    journal = JournalFile(tmp_path / "journal.jsonl")

    assert list(journal.events()) == []
    assert journal.last_seq() == 0


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        (b'{"seq":4,"time":4.0,"ty', "ends without a newline"),
        (b"\0\0\0\0\0\0", "ends without a newline"),  # ext4's zero-filled tail after a crash
        (b'{"seq":4,"time":4.0,"type":"x"', "ends without a newline"),
        (b'{"seq":4,"time":\n', "is not valid JSON"),
        (b'{"seq":9,"time":4.0,"type":"x"}\n', "has seq 9 where 4 was expected"),
    ],
)
def test_damaged_last_line_is_reported_with_its_line_number(
    tmp_path: Path, tail: bytes, reason: str
) -> None:
    journal = _journal_with_tail(tmp_path, tail)

    events = journal.events()
    assert [next(events)["seq"] for _ in range(3)] == [1, 2, 3]  # streamed before the damage
    with pytest.raises(JournalCorrupt) as caught:
        next(events)

    assert caught.value.line == 4
    assert caught.value.at_tail
    assert reason in str(caught.value)
    assert str(journal.path) in str(caught.value)
    assert "line 4" in str(caught.value)
    assert "rollout repair" in str(caught.value)


def test_append_refuses_to_write_after_a_damaged_last_line(tmp_path: Path) -> None:
    journal = _journal_with_tail(tmp_path, b'{"seq":4,"ti')

    with pytest.raises(JournalCorrupt, match="line 4 ends without a newline") as caught:
        journal.append({"type": "next"}, time=5.0)
    assert caught.value.at_tail
    assert journal.path.read_bytes().endswith(b'{"seq":4,"ti')


def test_repair_keeps_every_good_line_and_saves_the_damaged_tail(tmp_path: Path) -> None:
    journal = _journal_with_tail(tmp_path, b'{"seq":4,"ti')
    good = b"".join(_lines(journal.path)[:3])

    repair = journal.repair(now=datetime(2024, 5, 1, 12, 30, 0, tzinfo=UTC))

    assert repair is not None
    assert repair.line == 4
    assert repair.side_file == tmp_path / "journal.jsonl.corrupt-20240501T123000Z"
    assert repair.side_file.read_bytes() == b'{"seq":4,"ti'
    assert repair.side_file.stat().st_mode & 0o777 == 0o600
    assert journal.path.read_bytes() == good
    assert journal.append({"type": "resumed"}, time=9.0)["seq"] == 4
    assert [event["seq"] for event in journal.events()] == [1, 2, 3, 4]


def test_repeated_repairs_in_one_second_keep_every_side_file(tmp_path: Path) -> None:
    journal = _journal_with_tail(tmp_path, b"first-damage")
    now = datetime(2024, 5, 1, 12, 30, 0, tzinfo=UTC)
    first = journal.repair(now=now)
    with journal.path.open("ab") as file:
        file.write(b"second-damage")

    second = journal.repair(now=now)

    assert first is not None and second is not None
    assert first.side_file != second.side_file
    assert second.side_file.read_bytes() == b"second-damage"
    assert first.side_file.read_bytes() == b"first-damage"


def test_repair_of_a_sound_journal_changes_nothing(tmp_path: Path) -> None:
    journal = _journal_with_tail(tmp_path, b"")
    before = journal.path.read_bytes()

    assert journal.repair() is None
    assert journal.path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [journal.path]


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        (b"garbage\n", "line 3 is not valid JSON"),
        (b'{"seq":3,"time":3.0}\n', "line 3 has no string 'type'"),
        (b'{"seq":2,"time":3.0,"type":"x"}\n', "line 3 has seq 2 where 3 was expected"),
        (b"[1,2]\n", "line 3 holds a JSON list"),
        (b'{"seq":3,"time":3.0,"type":"\xff"}\n', "line 3 is not UTF-8"),
    ],
)
def test_damaged_middle_line_is_reported_and_not_repaired(
    tmp_path: Path, bad_line: bytes, reason: str
) -> None:
    journal = JournalFile(tmp_path / "journal.jsonl")
    for n in (1, 2):
        journal.append({"type": "ok"}, time=float(n))
    with journal.path.open("ab") as file:
        file.write(bad_line + b'{"seq":4,"time":4.0,"type":"ok"}\n')
    before = journal.path.read_bytes()

    with pytest.raises(JournalCorrupt, match=reason) as caught:
        list(journal.events())
    assert caught.value.line == 3
    assert not caught.value.at_tail
    assert "inspect the file" in str(caught.value)

    with pytest.raises(JournalCorrupt, match=reason):
        journal.repair()
    assert journal.path.read_bytes() == before


def test_a_long_last_line_is_found_across_read_chunks(tmp_path: Path) -> None:
    journal = JournalFile(tmp_path / "journal.jsonl")
    journal.append({"type": "big", "blob": "x" * 20_000}, time=1.0)
    journal.append({"type": "bigger", "blob": "y" * 50_000}, time=2.0)

    assert journal.last_seq() == 2
    assert journal.append({"type": "small"}, time=3.0)["seq"] == 3


def test_journal_in_a_rollout_names_its_rollout_in_the_repair_hint(rollout_dir: RolloutDir) -> None:
    rollout_dir.journal.append({"type": "started"}, time=1.0)
    with rollout_dir.journal.path.open("ab") as file:
        file.write(b"{")

    with pytest.raises(JournalCorrupt, match=f"rollout repair {rollout_dir.id}"):
        list(rollout_dir.journal.events())


def _journal_with_tail(tmp_path: Path, tail: bytes) -> JournalFile:
    journal = JournalFile(tmp_path / "journal.jsonl")
    for n in (1, 2, 3):
        journal.append({"type": "ok", "n": n}, time=float(n))
    with journal.path.open("ab") as file:
        file.write(tail)
    assert json.loads(_lines(journal.path)[0])["seq"] == 1
    return journal


def _bytes_read() -> int:
    """What this process has read so far (Linux's /proc/self/io ``rchar``)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_a_reader_that_caught_up_reads_only_what_was_appended_since(tmp_path: Path) -> None:
    """A driver catches up with its journal every round: a 48-hour journal (tens of
    thousands of lines) must not be read again from its first line each time."""
    path = tmp_path / "journal.jsonl"
    reader, writer = JournalFile(path), JournalFile(path)
    for n in range(2000):
        writer.append({"type": "measured", "values": {"rate": 0.99}, "n": n}, time=float(n))
    assert len(list(reader.events(after_seq=0))) == 2000
    for n in range(2000, 2003):
        writer.append({"type": "measured", "values": {"rate": 0.99}, "n": n}, time=float(n))

    before = _bytes_read()
    caught_up = [event["n"] for event in reader.events(after_seq=2000)]
    read = _bytes_read() - before

    assert caught_up == [2000, 2001, 2002]
    assert path.stat().st_size > 100_000 and read < 20_000
    assert list(reader.events(after_seq=2003)) == []
    assert [event["n"] for event in reader.events(after_seq=1998)] == [1998, 1999, 2000, 2001,
                                                                        2002]  # behind: ok
    assert [event["n"] for event in JournalFile(path).events(after_seq=2001)] == [2001, 2002]


def test_a_journal_cut_short_behind_a_readers_back_is_still_reported(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = JournalFile(path)
    for n in range(10):
        journal.append({"type": "ok"}, time=float(n))
    assert len(list(journal.events())) == 10
    with path.open("r+b") as file:
        file.truncate(sum(len(line) for line in _lines(path)[:4]))

    with pytest.raises(StateError, match="ends at seq 4 but the snapshot covers seq 10"):
        list(journal.events(after_seq=10))

"""The append-only journal of a rollout: one JSON event a line, numbered by ``seq``.

Line N holds seq N. A line is fsync'd before ``append`` returns, so an event the engine
was told is journaled survives a crash. The only damage a crash can do is a cut-short
last line; reading reports it (never drops it), and ``repair`` moves it to a side file.
Appends have a single writer: the command holding the rollout's lock.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from rollout_cli.errors import StateError
from rollout_cli.store.atomic import (
    FILE_MODE,
    create_exclusive,
    encode_json,
    fsync_dir,
    state_io,
    state_write,
    write_fully,
)
from rollout_cli.store.protocol import Event, Repair

# The CLI command that calls Journal.repair(); named here so every hint agrees.
REPAIR_COMMAND = "rollout repair {rollout_id}"
_RESERVED = ("seq", "time")
_TAIL_CHUNK = 4096


class JournalCorrupt(StateError):
    """A journal line is not a well-formed event; ``at_tail`` when it is the last line."""

    def __init__(self, path: Path, line: int, reason: str, at_tail: bool):
        self.path = path
        self.line = line
        self.reason = reason
        self.at_tail = at_tail
        if at_tail:
            repair = REPAIR_COMMAND.format(rollout_id=path.parent.name)
            hint = (
                f"it is the last line, so a write was interrupted; `{repair}`"
                " moves it to a side file and keeps every line before it"
            )
        else:
            hint = "lines follow it, so this is damage, not an interrupted write: inspect the file"
        super().__init__(f"journal {path} line {line} {reason}; {hint}")


class _BadLine(Exception):
    def __init__(self, reason: str):
        self.reason = reason


class JournalFile:
    """The journal in one file, ``path``: line N holds the event with seq N."""

    def __init__(self, path: Path):
        self.path = path
        # (seq, offset): where the whole line of event ``seq`` ends, as last read. Lines
        # are only ever added after it (a repair moves a damaged tail, never a sound
        # line), so a reader that caught up starts there instead of at line 1.
        self._mark = (0, 0)

    def append(self, event: Mapping[str, Any], *, time: float) -> Event:
        """Journal ``event`` at ``time`` with the next seq; returns the stored event."""
        record, body = encode_event(event, time)
        with state_write(f"append to journal {self.path}"):
            fd, created = self._open_for_append()
            try:
                size = os.fstat(fd).st_size
                seq = self._seq_at_end(fd, size) + 1
                # The body is encoded once, before the file is touched, so an event that
                # is not JSON fails without side effects; seq goes first for readers.
                _write_durably(fd, numbered(seq, body) + b"\n", size)
            finally:
                os.close(fd)
            if created:
                fsync_dir(self.path.parent)
        return {"seq": seq, **record}

    def last_seq(self) -> int:
        """The seq of the last event, 0 for an empty or missing journal."""
        with state_io(f"read journal {self.path}"):
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return 0
            try:
                return self._seq_at_end(fd, os.fstat(fd).st_size)
            finally:
                os.close(fd)

    def events(self, after_seq: int = 0) -> Iterator[Event]:
        """Stream the events with seq > ``after_seq``, in order, validating each line."""
        with state_io(f"read journal {self.path}"):
            try:
                file = self.path.open("rb")
            except FileNotFoundError:
                if after_seq:
                    raise self._short(0, after_seq) from None
                return
            with file:
                yield from self._events(file, after_seq)

    def repair(self, now: datetime | None = None) -> Repair | None:
        """Move a damaged last line to a ``.corrupt-<time>`` side file; None if all is well.

        Damage before the last line is not what a crash leaves, so it raises
        JournalCorrupt instead of guessing. Run it holding the rollout's lock.
        """
        with state_io(f"repair journal {self.path}"):
            if not self.path.exists():
                return None
            with self.path.open("r+b") as file:
                good_end = 0
                for line_no, raw in enumerate(file, start=1):
                    try:
                        _parse(raw, line_no)
                    except _BadLine as bad:
                        if file.read(1):
                            raise JournalCorrupt(self.path, line_no, bad.reason, False) from None
                        return self._move_tail(file, good_end, line_no, now or datetime.now(UTC))
                    good_end += len(raw)
        return None

    def _events(self, file: BinaryIO, after_seq: int) -> Iterator[Event]:
        start, offset = self._mark
        if start > after_seq or offset > os.fstat(file.fileno()).st_size:
            start, offset = 0, 0         # asked for older events, or the file was cut
        file.seek(offset)
        line_no = start
        for line_no, raw in enumerate(file, start=start + 1):
            whole = raw.endswith(b"\n")
            if line_no <= after_seq and whole:
                offset += len(raw)
                self._mark = (line_no, offset)
                continue  # covered by the caller's snapshot: not worth parsing
            try:
                event = _parse(raw, line_no)
            except _BadLine as bad:
                at_tail = not whole or not file.read(1)
                raise JournalCorrupt(self.path, line_no, bad.reason, at_tail) from None
            if whole:
                offset += len(raw)
                self._mark = (line_no, offset)
            yield event
        if line_no < after_seq:
            raise self._short(line_no, after_seq)

    def _short(self, last: int, after_seq: int) -> StateError:
        return StateError(
            f"journal {self.path} ends at seq {last} but the snapshot covers seq {after_seq}:"
            " the journal lost events the snapshot has, so neither can be trusted alone"
        )

    def _open_for_append(self) -> tuple[int, bool]:
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
        try:
            return os.open(self.path, flags), False
        except FileNotFoundError:
            pass
        try:
            return os.open(self.path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE), True
        except FileExistsError:
            return os.open(self.path, flags), False

    def _seq_at_end(self, fd: int, size: int) -> int:
        if size == 0:
            return 0
        raw = _last_line(fd, size)
        try:
            return int(_parse(raw, None)["seq"])
        except _BadLine as bad:
            raise JournalCorrupt(self.path, _count_lines(fd, size), bad.reason, True) from None

    def _move_tail(self, file: BinaryIO, good_end: int, line_no: int, now: datetime) -> Repair:
        file.seek(good_end)
        tail = file.read()
        with state_write(f"move the damaged tail of journal {self.path} aside"):
            side_file = self._save_side_file(tail, now)
            # The tail is durable in the side file before it leaves the journal: a crash
            # in between leaves it in both places, never in neither.
            file.truncate(good_end)
            file.flush()
            os.fsync(file.fileno())
        return Repair(line=line_no, side_file=side_file, size=len(tail), journal=self.path)

    def _save_side_file(self, tail: bytes, now: datetime) -> Path:
        stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        base = f"{self.path.name}.corrupt-{stamp}"
        for attempt in range(1, 1000):
            name = base if attempt == 1 else f"{base}-{attempt}"
            side_file = self.path.with_name(name)
            if create_exclusive(side_file, tail):
                return side_file
        raise StateError(f"could not name a side file for the damaged tail of {self.path}")


def encode_event(event: Mapping[str, Any], time: float) -> tuple[Event, bytes]:
    """``event`` at ``time`` as stored, and its JSON (without ``seq``); ValueError for
    one the journal refuses (no string type, a reserved key, not JSON)."""
    event_type = event.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise ValueError(f"an event needs a non-empty string 'type', got {event_type!r}")
    clash = [key for key in _RESERVED if key in event]
    if clash:
        raise ValueError(f"event {event_type!r} sets {clash}, which the journal assigns")
    if type(time) not in (int, float) or not math.isfinite(time):
        raise ValueError(f"event {event_type!r} needs a finite number for time, got {time!r}")
    record = {"time": time, **event}
    try:
        return record, encode_json(record)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"event {event_type!r} cannot be journaled as JSON: {exc}") from exc


def numbered(seq: int, body: bytes) -> bytes:
    """An event's stored JSON: ``body`` (from ``encode_event``) with ``seq`` first, for
    readers; the directory's line and the database's row are these same bytes."""
    return b'{"seq":%d,' % seq + body[1:]


def _write_durably(fd: int, line: bytes, size_before: int) -> None:
    try:
        write_fully(fd, line)
        os.fsync(fd)
    except OSError:
        # A half-written line (disk full) would block every later append; take it back.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size_before)
        raise


def _parse(raw: bytes, line_no: int | None) -> Event:
    """The event on one line, checked; ``line_no`` None skips the seq-equals-line check."""
    if not raw.endswith(b"\n"):
        raise _BadLine("ends without a newline (cut short)")
    try:
        event = json.loads(raw)
    except UnicodeDecodeError:
        raise _BadLine("is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise _BadLine(f"is not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(event, dict):
        raise _BadLine(f"holds a JSON {type(event).__name__}, not an event object")
    _check_fields(event, line_no)
    return event


def _check_fields(event: Event, line_no: int | None) -> None:
    seq = event.get("seq")
    if type(seq) is not int or seq < 1:
        raise _BadLine(f"has no positive integer 'seq' (got {seq!r})")
    if line_no is not None and seq != line_no:
        raise _BadLine(f"has seq {seq} where {line_no} was expected")
    if not isinstance(event.get("type"), str):
        raise _BadLine("has no string 'type'")
    time = event.get("time")
    if isinstance(time, bool) or not isinstance(time, int | float) or not math.isfinite(time):
        raise _BadLine(f"has no numeric 'time' (got {time!r})")


def _last_line(fd: int, size: int) -> bytes:
    chunk = _TAIL_CHUNK
    while True:
        start = max(0, size - chunk)
        data = os.pread(fd, size - start, start)
        # Skip the final byte: it is the last line's own newline, when it has one.
        cut = data.rfind(b"\n", 0, len(data) - 1)
        if cut >= 0 or start == 0:
            return data[cut + 1 :]
        chunk *= 2


def _count_lines(fd: int, size: int) -> int:
    """The number of the last line; only used to word an error."""
    newlines, offset, last = 0, 0, b"\n"
    while offset < size:
        block = os.pread(fd, min(1 << 20, size - offset), offset)
        if not block:
            break
        newlines += block.count(b"\n")
        offset += len(block)
        last = block[-1:]
    return newlines if last == b"\n" else newlines + 1

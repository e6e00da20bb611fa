"""Durable file primitives: a file is either wholly there or not there at all.

Every change the store makes on disk goes through one of these (or ``Journal.append``),
so the crash tests can stop a process after any of them.

State may name internal URLs, so files are created 0o600 and directories 0o700.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rollout_cli.errors import StateError, StateWriteError

FILE_MODE = 0o600
DIR_MODE = 0o700


@contextmanager
def state_io(action: str) -> Iterator[None]:
    """Map an OSError onto StateError at the store's edge: the message says what failed.

    For reading; a write goes under ``state_write``.
    """
    try:
        yield
    except OSError as exc:
        raise StateError(f"could not {action}{_where(exc)}: {exc.strerror or exc}") from exc


@contextmanager
def state_write(action: str) -> Iterator[None]:
    """Map an OSError while writing state onto StateWriteError, naming the file and error."""
    try:
        yield
    except OSError as exc:
        code = errno.errorcode.get(exc.errno or 0)
        reason = f"{exc.strerror or exc}{f' ({code})' if code else ''}"
        raise StateWriteError(
            f"could not {action}{_where(exc)}: {reason}. The rollout may have acted since"
            " its last journaled event (`rollout history` shows it); fix the disk, then"
            " `rollout resume` continues"
        ) from exc


def _where(exc: OSError) -> str:
    return f" ({exc.filename})" if exc.filename else ""


def ensure_dir(path: Path) -> None:
    """Create ``path`` and missing parents as private directories."""
    if path.is_dir():
        return
    ensure_dir(path.parent)
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        return  # another process made it in between: fine
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Persist a directory entry (a create, rename or unlink) across a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_fully(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def encode_json(data: Mapping[str, Any]) -> bytes:
    """Compact, strict JSON: NaN and Infinity are not JSON and would not read back elsewhere."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _write_temp(directory: Path, name: str, data: bytes) -> Path:
    # Hidden and randomised so readers never mistake it for the real file, and a
    # temp file left by a crash is simply ignored.
    temp = directory / f".{name}.{secrets.token_hex(4)}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        try:
            write_fully(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        # A full disk must not also leave a temp file behind for every failed attempt.
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return temp


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: after a crash a reader sees the old or the new file."""
    temp = _write_temp(path.parent, path.name, data)
    try:
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def create_exclusive(path: Path, data: bytes) -> bool:
    """Create ``path`` holding ``data`` unless it exists; True when this call created it.

    Exclusive like O_CREAT|O_EXCL, but the file appears with its whole content (a hard
    link of a complete temp file), so a crash can never leave an empty claim or lock
    that names no one and cannot be released by id.
    """
    temp = _write_temp(path.parent, path.name, data)
    try:
        os.link(temp, path)
    except FileExistsError:
        return False
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return True


def remove_file(path: Path) -> bool:
    """Remove ``path`` for good; False if it was not there."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    fsync_dir(path.parent)
    return True


def rename_dir(source: Path, target: Path) -> None:
    """Move the complete directory ``source`` to ``target``, which must not exist yet."""
    os.rename(source, target)
    fsync_dir(target.parent)


@contextmanager
def guarded(path: Path) -> Iterator[None]:
    """Exclude every other process guarding ``path`` for the block: an flock on a hidden
    file beside it, which ends with the block or with the process, however it dies. For a
    read-compare-remove of a small file (a lock, a claim) that must not interleave."""
    fd = _open_guard(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


def make_guard(path: Path) -> None:
    """Make ``path``'s guard file now, while there is room for it, so that ``guarded`` on
    a disk that has filled up since still works."""
    os.close(_open_guard(path))


def _open_guard(path: Path) -> int:
    guard = path.with_name(f".{path.name}.guard")
    return os.open(guard, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; ValueError saying what is wrong if it is not one."""
    try:
        data = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"holds a JSON {type(data).__name__}, not an object")
    return data

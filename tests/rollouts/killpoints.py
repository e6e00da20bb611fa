"""Fault injection for the crash tests, kept out of production code: a `rollout` process
that SIGKILLs itself right after its Nth durable state write (or tears a journal line, or
runs out of room).

A durable write is one call of the store's primitives that changes what is on disk: a
journal append (of either store: a PostgreSQL append is one committed transaction), an atomic file write (metadata, snapshot), an exclusive create (claim,
lock, side file), a removal (claim or lock released) or the rename that publishes a new
rollout. Killing right after each of them in turn reaches every state a crash can leave.

Set in the environment of the process to kill:

    ROLLOUT_TEST_KILL_AFTER=N        SIGKILL right after the Nth write ...
    ROLLOUT_TEST_KILL_KIND=KIND      ... counting only writes of this kind (default: all)
    ROLLOUT_TEST_TEAR_APPEND=N       the Nth journal append writes half its line, then
                                     SIGKILL: the cut-short last line a crash can leave
    ROLLOUT_TEST_WRITE_LOG=FILE      append each write's kind to FILE, one a line
    ROLLOUT_TEST_FILE_SIZE_LIMIT=N   no file may grow past N bytes (RLIMIT_FSIZE): the
                                     kernel refuses the write (EFBIG), as a full disk does

Forked children (forked.py) call ``install_from_env`` before the CLI's main; a real
interpreter runs this file in place of `python -m rollout_cli`:
``python tests/rollouts/killpoints.py ARGS...``. It imports nothing from tests/, so that
it runs as a script from any directory.
"""

from __future__ import annotations

import functools
import os
import resource
import signal
import sys
from collections.abc import Callable, Mapping
from typing import Any

KILL_AFTER = "ROLLOUT_TEST_KILL_AFTER"
KILL_KIND = "ROLLOUT_TEST_KILL_KIND"
TEAR_APPEND = "ROLLOUT_TEST_TEAR_APPEND"
WRITE_LOG = "ROLLOUT_TEST_WRITE_LOG"
FILE_SIZE_LIMIT = "ROLLOUT_TEST_FILE_SIZE_LIMIT"
ENV = (KILL_AFTER, KILL_KIND, TEAR_APPEND, WRITE_LOG, FILE_SIZE_LIMIT)

JOURNAL_APPEND = "journal-append"
# kind -> the primitive in rollout_cli.store.atomic that does it
PRIMITIVES = {
    "atomic-write": "write_atomic",
    "exclusive-create": "create_exclusive",
    "remove": "remove_file",
    "publish": "rename_dir",
}
KINDS = (JOURNAL_APPEND, *PRIMITIVES)


def kill_env(after: int, kind: str | None = None) -> dict[str, str]:
    """The environment that kills a process right after its ``after``th write (of ``kind``)."""
    return {KILL_AFTER: str(after), **({KILL_KIND: kind} if kind else {})}


def install(kill_after: int | None, kind: str | None = None, log: str | None = None,
            tear_append: int | None = None) -> None:
    """Wrap every durable write of the store in this process: log it, maybe die after it
    (or, for ``tear_append``, halfway through the line of that journal append)."""
    import rollout_cli.store.atomic as atomic
    import rollout_cli.store.journal as journal
    from rollout_cli.store.journal import JournalFile

    if tear_append is not None:
        journal._write_durably = _tearing(journal._write_durably, tear_append)

    if kind is not None and kind not in KINDS:
        raise ValueError(f"{KILL_KIND}={kind!r}: not one of {', '.join(KINDS)}")
    counted = [0]

    def after_write(write_kind: str) -> None:
        if log:
            with open(log, "a") as file:
                file.write(write_kind + "\n")
        if kind in (None, write_kind):
            counted[0] += 1
            if kill_after is not None and counted[0] >= kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

    def wrap(write_kind: str, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def write(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            after_write(write_kind)
            return result

        return write

    JournalFile.append = wrap(JOURNAL_APPEND, JournalFile.append)  # type: ignore[method-assign]
    # PostgreSQL: an append, and the transaction that creates a rollout with its created
    # event (the directory store's first append), are each one committed write.
    from rollout_cli.store.postgres import PgJournal, PostgresStore  # no psycopg import yet

    PgJournal.append = wrap(JOURNAL_APPEND, PgJournal.append)  # type: ignore[method-assign]
    PostgresStore.create = wrap(JOURNAL_APPEND, PostgresStore.create)  # type: ignore[method-assign]
    PostgresStore.start = wrap(JOURNAL_APPEND, PostgresStore.start)  # type: ignore[method-assign]
    for write_kind, name in PRIMITIVES.items():
        _rebind(getattr(atomic, name), wrap(write_kind, getattr(atomic, name)))


def _tearing(write_line: Callable[..., Any], at: int) -> Callable[..., Any]:
    appended = [0]

    def write(fd: int, line: bytes, size_before: int) -> Any:
        appended[0] += 1
        if appended[0] == at:
            os.write(fd, line[: len(line) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        return write_line(fd, line, size_before)

    return write


def _rebind(original: Callable[..., Any], replacement: Callable[..., Any]) -> None:
    """Replace ``original`` wherever a rollout module bound it (``from atomic import ...``)."""
    import rollout_cli.store.directory
    import rollout_cli.store.journal
    import rollout_cli.store.locks
    import rollout_cli.store.snapshot  # noqa: F401  (each binds primitives by name)

    for name, module in list(sys.modules.items()):
        if name == "rollout_cli" or name.startswith("rollout_cli."):
            for attribute, value in list(vars(module).items()):
                if value is original:
                    setattr(module, attribute, replacement)


def install_from_env(env: Mapping[str, str] = os.environ) -> None:
    if FILE_SIZE_LIMIT in env:
        limit = int(env[FILE_SIZE_LIMIT])
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(
            resource.RLIMIT_FSIZE)[1]))
    if any(name in env for name in (KILL_AFTER, KILL_KIND, TEAR_APPEND, WRITE_LOG)):
        after, tear = env.get(KILL_AFTER), env.get(TEAR_APPEND)
        install(int(after) if after else None, env.get(KILL_KIND), env.get(WRITE_LOG),
                int(tear) if tear else None)


def main() -> None:
    install_from_env()
    from rollout_cli.cli.app import main as rollout_main

    sys.argv[0] = "rollout"
    rollout_main()


if __name__ == "__main__":
    main()

"""The PostgreSQL store's connection: its URL, and every statement run with bounded retry.

    postgresql://USER:PASSWORD@HOST:PORT/DB?schema=rollout&retry=30

``schema`` (default ``rollout``) holds the store's tables; ``retry`` is how many seconds
a lost or unreachable database is retried, with backoff, before the command gives up
with StateUnreachable (exit 5) naming host:port, never the password. Every other query
parameter is libpq's (``sslmode``, ``connect_timeout``...).

A unit of work runs in one transaction and is retried whole when the connection is lost,
so it must be safe to run again: the journal's append finds its own event by the id it
was given before storing another (``postgres.PgJournal``).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from rollout_cli.errors import StateError, StateUnreachable, StateWriteError, UsageError
from rollout_cli.redact import Redactor, redact_url

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")

EXTRA_HINT = "pip install 'rollout-cli[postgres]'"
DEFAULT_SCHEMA = "rollout"
DEFAULT_RETRY = 30.0
CONNECT_TIMEOUT = 5  # seconds for one attempt, unless the URL's connect_timeout says
# What libpq says when the server answered and refused (not worth retrying).
_LOGIN_REFUSED = ("authentication failed", "does not exist", "no pg_hba.conf entry",
                  "password authentication", "role \"")
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class PgLocation:
    """A ``postgresql://`` location, parsed: what libpq is given, and what may be shown."""

    conninfo: str      # the URL without our parameters, password included: never shown
    schema: str
    retry: float
    shown: str         # the URL, password masked
    host: str          # host:port/db, for "cannot reach" messages
    passwords: tuple[str, ...]

    @classmethod
    def parse(cls, location: str) -> PgLocation:
        parts = urlsplit(location)
        shown = redact_url(location, Redactor())
        params = parse_qsl(parts.query, keep_blank_values=True)
        ours = {name: value for name, value in params if name in ("schema", "retry")}
        schema = ours.get("schema", DEFAULT_SCHEMA)
        if not _IDENTIFIER.fullmatch(schema):
            raise UsageError(f"--state {shown}: schema {schema!r} must be a lower-case SQL "
                             "name (letters, digits, '_')")
        try:
            retry = float(ours.get("retry", str(DEFAULT_RETRY)).removesuffix("s"))
        except ValueError:
            raise UsageError(f"--state {shown}: retry must be a number of seconds") from None
        rest = [(name, value) for name, value in params if name not in ours]
        if not any(name == "connect_timeout" for name, _ in rest):
            rest.append(("connect_timeout", str(CONNECT_TIMEOUT)))
        conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), ""))
        try:
            port = parts.port or 5432
        except ValueError:
            raise UsageError(f"--state {shown}: the port is not a number") from None
        host = f"{parts.hostname or 'localhost'}:{port}{parts.path or '/'}"
        passwords = [unquote(parts.password or ""),
                     *(value for name, value in params if name == "password")]
        return cls(conninfo=conninfo, schema=schema, retry=max(retry, 0.0), shown=shown,
                   host=host, passwords=tuple(word for word in passwords if word))

    def redact(self, text: str) -> str:
        """``text`` with the password masked wherever it appears (a driver's message)."""
        return Redactor(self.passwords).text(text)


def import_psycopg(location: str) -> Any:
    """psycopg, or a UsageError naming the extra that installs it."""
    try:
        import psycopg
    except ImportError:
        shown = redact_url(location, Redactor())
        raise UsageError(f"--state {shown}: the PostgreSQL store needs psycopg, which is not "
                         f"installed: {EXTRA_HINT}") from None
    return psycopg


class _Lost(Exception):
    """The connection failed (never made, or dropped): worth another attempt."""

    def __init__(self, cause: Exception):
        super().__init__(str(cause))
        self.cause = cause


class Database:
    """One connection to the store's database, made on first use and remade when lost;
    ``on_connect`` runs on each new one (the schema check). Threads (an agent's drivers,
    their heartbeats, its alert handlers) take turns on it a transaction at a time: one
    thread's BEGIN, COMMIT or ROLLBACK must never end another's work."""

    def __init__(self, where: PgLocation, on_connect: Callable[[psycopg.Connection], None],
                 sleep: Callable[[float], None] = time.sleep):
        self.where = where
        self._on_connect = on_connect
        self._sleep = sleep
        self._conn: psycopg.Connection | None = None
        self._turn = threading.RLock()
        # Raised each time the connection is remade: the server may have restarted, and
        # sessions of ours that held advisory locks with it (postgres_locks.PgLock).
        self.generation = 0

    def connect(self) -> psycopg.Connection:
        """A new autocommit connection, search_path on the store's schema (one attempt;
        psycopg.OperationalError when it fails)."""
        import psycopg

        conn = psycopg.connect(self.where.conninfo, autocommit=True)
        try:
            self._on_connect(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def run(self, what: str, work: Callable[[psycopg.Connection], T]) -> T:
        """``work`` in one transaction, retried whole while the database is unreachable,
        up to the location's retry time; ``what`` names it in errors."""
        return self._retry(what, lambda: self._once(work))

    def session(self, what: str, setup: Callable[[psycopg.Connection], None]) -> psycopg.Connection:
        """A connection of its own, ``setup`` run on it (a lock's advisory lock), retried
        like ``run``."""
        import psycopg

        def once() -> psycopg.Connection:
            try:
                conn = self.connect()
            except psycopg.OperationalError as exc:
                self._refuse_login(exc)
                raise _Lost(exc) from exc
            try:
                setup(conn)
            except psycopg.OperationalError as exc:
                conn.close()
                raise _Lost(exc) from exc
            except BaseException:
                conn.close()
                raise
            return conn

        return self._retry(what, once)

    def _retry(self, what: str, once: Callable[[], T]) -> T:
        from tenacity import (
            Retrying,
            retry_if_exception_type,
            stop_after_delay,
            wait_exponential,
            wait_random,
        )

        retrying = Retrying(stop=stop_after_delay(self.where.retry),
                            wait=wait_exponential(multiplier=0.1, max=5.0) + wait_random(0, 0.1),
                            retry=retry_if_exception_type(_Lost), sleep=self._sleep,
                            reraise=True)
        try:
            for attempt in retrying:
                with attempt:
                    return once()
        except _Lost as lost:
            raise StateUnreachable(
                f"cannot {what}: the state database at {self.where.host} did not answer"
                f" for {self.where.retry:g}s ({self._reason(lost.cause)}); nothing was sent"
                " that was not journaled first: once it is back, `rollout resume`"
                " continues") from None
        raise AssertionError("unreachable")  # pragma: no cover - Retrying reraises

    def _once(self, work: Callable[[psycopg.Connection], T]) -> T:
        with self._turn:
            return self._transaction(work)

    def _transaction(self, work: Callable[[psycopg.Connection], T]) -> T:
        import psycopg

        try:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = self.connect()
                self.generation += 1
            conn = self._conn
            # BEGIN and COMMIT by hand: a signal (Ctrl-C, SIGTERM) raised mid-statement
            # leaves the connection unusable, and it is dropped, not rolled back on.
            conn.execute("BEGIN")
            try:
                result = work(conn)
            except Exception:
                if not conn.broken:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result
        except psycopg.OperationalError as exc:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self.close()
                self._refuse_login(exc)
                raise _Lost(exc) from exc
            raise self._refused(exc) from exc
        except psycopg.Error as exc:
            raise self._refused(exc) from exc
        except BaseException as exc:
            if not isinstance(exc, Exception):
                self.close()  # the server rolls back what the connection had begun
            raise

    def _refuse_login(self, exc: Exception) -> None:
        """A login the server refused is not retried: waiting will not fix it (exit 2)."""
        reason = self._reason(exc)
        if any(sign in reason for sign in _LOGIN_REFUSED):
            raise StateError(f"the state database at {self.where.host} refused the login:"
                             f" {reason}; check the user, password and database in the"
                             " state URL") from None

    def _refused(self, exc: Exception) -> StateError:
        return StateWriteError(f"the state database at {self.where.host} refused a statement:"
                               f" {self._reason(exc)}")

    def _reason(self, exc: Exception) -> str:
        text = " ".join(str(exc).split()) or type(exc).__name__
        return self.where.redact(text)

    def close(self) -> None:
        with self._turn:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            # A broken connection may fail to close; it is gone anyway.
            with contextlib.suppress(Exception):
                conn.close()

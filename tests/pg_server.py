"""A real PostgreSQL server for the tests, started in a temporary directory.

Debian's binaries (``/usr/lib/postgresql/N/bin``: ``scripts/test`` installs the
``postgresql`` package when they are missing) run ``initdb`` and ``pg_ctl`` on a free
loopback port. PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` user the package creates (or ``rollout-pg``, made with useradd, on a
machine without it). Each test gets a schema of its own (``url(schema)``): nothing is
shared between tests but the server.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

USER = "rollout"
PASSWORD = "secret-pw-1234"


def binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL's initdb is missing: scripts/test installs Debian's "
                           "postgresql package (apt-get install postgresql)")
    return Path(found[-1]).parent


def _server_user() -> str | None:
    """None when not root (the server runs as us); else a user it may run as."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "rollout-pg"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    "rollout-pg"], check=True)
    return "rollout-pg"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PgServer:
    """One server: ``start``, ``kill`` (SIGKILL, as a crash), ``stop``."""

    def __init__(self, fsync: bool = False) -> None:
        self.fsync = fsync   # off for the tests: a killed server still loses nothing
        self.bin = binaries()
        self.user = _server_user()
        self.dir = Path(tempfile.mkdtemp(prefix="rollout-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        pw_file = self.dir / "pw"
        pw_file.write_text(PASSWORD + "\n")
        if self.user is not None:
            os.chown(pw_file, pwd.getpwnam(self.user).pw_uid, -1)
        # md5 passwords over TCP: the password in the URL is checked, as in production.
        self._run(self.bin / "initdb", "-D", str(self.data), "-U", USER, "-A", "md5",
                  "--pwfile", str(pw_file), "-E", "UTF8", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    def schema_url(self, schema: str | None = None, **params: str) -> str:
        """A URL of a fresh schema (its own tables), with more query ``params``."""
        query = {"schema": schema or f"t_{uuid.uuid4().hex[:12]}", **params}
        return self.url + "?" + "&".join(f"{name}={value}" for name, value in query.items())

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
                   f" -c fsync={'on' if self.fsync else 'off'} -c max_connections=300"
                   " -c shared_buffers=16MB")
        self._run(self.bin / "pg_ctl", "-D", str(self.data), "-o", options,
                  "-l", str(self.dir / "log"), "-w", "-t", "60", "start")

    def pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def kill(self) -> None:
        """SIGKILL the server and its backends, as a crash of its machine would."""
        main = self.pid()
        doomed = [main, *_children(main)]
        for pid in doomed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in doomed):
            time.sleep(0.02)
        # A dead postmaster may linger as a zombie (nobody reaps it in a container), which
        # the lock files' checks would take for a live server.
        (self.data / "postmaster.pid").unlink(missing_ok=True)
        (self.dir / f".s.PGSQL.{self.port}.lock").unlink(missing_ok=True)

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, FileNotFoundError):
            self._run(self.bin / "pg_ctl", "-D", str(self.data), "-m", "immediate", "-w",
                      "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self, *args: object) -> None:
        done = subprocess.run([str(arg) for arg in args], user=self.user, cwd=self.dir,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            log = self.dir / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr}\n{tail}")


def _children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[1]) == parent:
                found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def sql(url: str, statement: str, *params: object) -> list[tuple[object, ...]]:
    """Run ``statement`` in the schema of the store at ``url``; the rows it returns."""
    import psycopg

    conninfo, _, query = url.partition("?")
    schema = dict(pair.split("=", 1) for pair in query.split("&"))["schema"]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        cursor = conn.execute(statement, params or None)
        return cursor.fetchall() if cursor.description else []


def dump_schema(url: str) -> list[tuple[str, str]]:
    """Every row of every table of the store at ``url``, as (table, the row as text)."""
    tables = sql(url, "SELECT table_name FROM information_schema.tables"
                      " WHERE table_schema = current_schema() ORDER BY table_name")
    return [(str(table), str(row)) for (table,) in tables
            for row in sql(url, f'SELECT t::text FROM "{table}" t')]

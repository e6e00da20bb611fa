"""The PostgreSQL store's tables, created on first use in the location's schema, and their
version: a database written by a newer rollout (a higher version) is refused, never
guessed at.

    schema_version  (version)                          one row: SCHEMA_VERSION
    rollouts        (id, plan_name, created, meta)     meta: RolloutMeta as JSON text
    journal         (rollout_id, seq, body, append_id) unique (rollout_id, seq); body is the
                                                       event's JSON, as the directory's line
    snapshots       (rollout_id, seq, state)           the last snapshot of each rollout
    claims          (plan_name, rollout_id)            a plan's active rollout: one per plan
    locks           (name, id, record)                 'rollout/ID', 'plan/NAME'; the holder
                                                       also holds a session advisory lock
    leases          (rollout_id, lease)                who drives a rollout (lease.py)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollout_cli.errors import StateError

if TYPE_CHECKING:
    import psycopg

SCHEMA_VERSION = 1
# Any constant: held (for one transaction) while the tables are created, so that two
# first commands do not both create them.
_CREATE_LOCK = 0x726F6C6C6F7574

_TABLES = """
CREATE TABLE schema_version (version integer NOT NULL);
CREATE TABLE rollouts (
    id text PRIMARY KEY,
    plan_name text NOT NULL,
    created timestamptz NOT NULL,
    meta text NOT NULL
);
CREATE TABLE journal (
    rollout_id text NOT NULL REFERENCES rollouts (id),
    seq integer NOT NULL CHECK (seq >= 1),
    body text NOT NULL,
    append_id text UNIQUE,
    PRIMARY KEY (rollout_id, seq)
);
CREATE TABLE snapshots (
    rollout_id text PRIMARY KEY REFERENCES rollouts (id),
    seq integer NOT NULL,
    state text NOT NULL
);
CREATE TABLE claims (
    plan_name text PRIMARY KEY,
    rollout_id text NOT NULL
);
CREATE TABLE locks (
    name text PRIMARY KEY,
    id text NOT NULL UNIQUE,
    record text NOT NULL
);
CREATE TABLE leases (
    rollout_id text PRIMARY KEY REFERENCES rollouts (id),
    lease text NOT NULL
);
"""


def prepare(conn: psycopg.Connection, schema: str, shown: str) -> None:
    """Point ``conn`` at ``schema``, creating its tables at the current version if it has
    none; StateError if they are at a version this code does not know."""
    from psycopg import sql

    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    version = _version(conn)
    if version is None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(schema)))
            version = _version(conn)
            if version is None:
                for statement in filter(str.strip, _TABLES.split(";")):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (%s)",
                             (SCHEMA_VERSION,))
                version = SCHEMA_VERSION
    if version > SCHEMA_VERSION:
        raise StateError(
            f"the state in {shown} has schema version {version}, newer than this rollout"
            f" knows ({SCHEMA_VERSION}): it was written by a newer rollout-cli; upgrade"
            " this one (pip install -U rollout-cli) rather than let it guess")
    if version < 1:
        raise StateError(f"the state in {shown} has schema version {version}, which no"
                         " rollout-cli wrote")


def _version(conn: psycopg.Connection) -> int | None:
    table = conn.execute("SELECT to_regclass('schema_version')").fetchone()
    if table is None or table[0] is None:
        return None
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return None if row is None or row[0] is None else int(row[0])

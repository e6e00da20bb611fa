"""Shared fixtures: running the real CLI in-process, with its exit code and both streams."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLANS = ROOT / "plans"


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def rollout(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
            ) -> Callable[..., CliResult]:
    """Run `rollout ARGS...` through the real entry point (error mapping included)."""
    from rollout_cli.cli.app import main
    from rollout_cli.render import console

    def run(*args: str) -> CliResult:
        console.stdout.cache_clear()
        console.stderr.cache_clear()
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["rollout", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def pg_server():  # type: ignore[no-untyped-def]
    """A real PostgreSQL server for the session, started on first use (tests/pg_server.py)."""
    from tests.pg_server import PgServer

    server = PgServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server) -> str:  # type: ignore[no-untyped-def]
    """The URL of a fresh, empty PostgreSQL store: a schema of this test's own."""
    return str(pg_server.schema_url())

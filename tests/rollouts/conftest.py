"""Fixtures for the rollout integration tests: the sandbox on loopback, plans derived from
the demo plan, and an operator who runs `rollout` in-process or as real processes.

Derived plans (``derive_plan``) are plans/brain-api-demo.yaml rewritten as text, so that
every stage, request, command, gate and rollback step of the demo runs as written. What a
test changes, it says: bake lengths (0s unless asked), the analysis (left out unless
asked: its rounds take seconds and make the journal's length depend on timing), and for a
few tests the A/B start's idempotency, the target's retry policy or timeout, or one extra
step in a stage.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from rollout_cli.sandbox import create_sandbox, running_sandbox
from rollout_cli.store import Store, open_store
from tests.conftest import PLANS, CliResult
from tests.rollouts import killpoints
from tests.rollouts.forked import Zygote

DEMO_PLAN = PLANS / "brain-api-demo.yaml"
SEED = 7
TIME_SCALE = 600.0
FLAG = "USE_MODERN_BRAIN_API"

# The guide's emergency-rollback.sh, as the sandbox sees it (method, path, body).
EMERGENCY_SEQUENCE = [
    ("POST", "/api/admin/feature-flags/disable", {"flag": FLAG, "value": False}),
    ("POST", "/api/admin/ab-testing/emergency-stop", None),
    ("POST", "/api/admin/memory/cleanup", None),
    ("POST", "/api/admin/alerts/emergency",
     {"message": "Brain API rolled back to legacy implementation"}),
]

# Environment that must not leak from the developer's shell into a rollout under test;
# what a test sets afterwards (BRAIN_API_URL, ...) reaches in-process and child commands.
_SCRUBBED_ENV = ("BRAIN_API_URL", "BRAIN_API_TOKEN", "SLACK_WEBHOOK_URL", "ROLLOUT_STATE",
                 "ROLLOUT_STATE_DIR",
                 "PROM_URL", *killpoints.ENV)

# --- fast plans ------------------------------------------------------------------------

_SECTION = re.compile(r"^([a-z_]+):")
_ANALYSIS = ("analysis", "background")
_STAGE = re.compile(r"^  - (?:\{name: |name: )([A-Za-z0-9._-]+)")
_BAKE = re.compile(r"\bbake: [^,}\n]+")
_IDEMPOTENT_START = re.compile(r"(capture: \{test_id: testId\}\n)[ ]+idempotent: true.*\n")
_TARGET_SETTING = "^  {}: .*$"  # in the demo, only `target:` has retry/timeout at this depth


def derive_plan(path: Path, *, bake: str = "0s", bakes: Mapping[str, str] | None = None,
                analysis: bool = False, strict_start: bool = False, retry: str | None = None,
                timeout: str | None = None, extra: Mapping[str, str] | None = None) -> Path:
    """Write the demo plan to ``path`` with every bake set to ``bake`` (``bakes`` per stage).

    Without ``analysis`` the `analysis:` and `background:` sections (and a stage's own
    `analysis:`) are left out. ``strict_start`` drops the demo's `idempotent: true` from
    POST ab-testing/start, so that the call is never re-sent once it may have been applied.
    ``retry`` (a YAML flow mapping) and ``timeout`` replace the target's; ``extra`` adds
    keys (YAML flow text) to inline stages like `{name: canary-25}`.
    """
    bakes = bakes or {}
    extra = dict(extra or {})
    stage: str | None = None
    section = ""
    lines = []
    for line in DEMO_PLAN.read_text().splitlines(keepends=True):
        if match := _SECTION.match(line):
            section = match.group(1)
        if not analysis and (section in _ANALYSIS or line.lstrip().startswith("analysis:")):
            continue
        if match := _STAGE.match(line):
            stage = match.group(1)
        if stage is not None:
            line = _BAKE.sub(f"bake: {bakes.get(stage, bake)}", line)
        if stage in extra and line.rstrip().endswith("}") and line.startswith("  - {"):
            line = f"{line.rstrip()[:-1]}, {extra.pop(stage)}}}\n"
        lines.append(line)
    assert not extra, f"no inline stage named {sorted(extra)} in the demo plan"
    text = "".join(lines)
    if strict_start:
        text = _IDEMPOTENT_START.sub(r"\1", text)
    for key, value in (("retry", retry), ("timeout", timeout)):
        if value is not None:
            text, count = re.subn(_TARGET_SETTING.format(key), f"  {key}: {value}", text,
                                  flags=re.MULTILINE)
            assert count == 1, f"the demo plan's target.{key} line moved"
    path.write_text(text)
    return path


# --- the target --------------------------------------------------------------------------


class Hold:
    """A WSGI wrapper around the sandbox that, once armed, keeps the next request to one
    path (that one only) waiting until the test releases it: the command that sent it
    stays inside its call, holding its lock, for exactly as long as the test wants."""

    def __init__(self, app: Any):
        self.app = app
        self.path: str | None = None
        self.arrived = threading.Event()
        self._released = threading.Event()
        self._first = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    def arm(self, path: str) -> None:
        self.path = path
        self.arrived.clear()
        self._released.clear()

    def release(self) -> None:
        self.path = None
        self._released.set()

    def wait_arrived(self, timeout: float = 30.0) -> None:
        assert self.arrived.wait(timeout), f"no request to {self.path} within {timeout}s"

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self._first:
            held = self.path == environ.get("PATH_INFO") and not self.arrived.is_set()
            if held:
                self.arrived.set()
        if held:
            self._released.wait(60)
        return self.app(environ, start_response)


class Target:
    """The sandbox a rollout drives, seen from outside over HTTP: its call log and state."""

    def __init__(self, url: str, token: str | None = None, hold: Hold | None = None):
        self.url = url
        self.token = token
        self.hold = hold
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # One client for the test's reads: a new one per request costs an SSL context.
        self._client = httpx.Client(base_url=url, headers=headers, timeout=5)

    def close(self) -> None:
        self._client.close()

    def _get(self, path: str) -> Any:
        response = self._client.get(path)
        response.raise_for_status()
        return response.json()

    def calls(self) -> list[dict[str, Any]]:
        """Every admin call the sandbox received, oldest first."""
        return list(self._get("/api/admin/_sandbox/calls")["calls"])

    def changes(self) -> list[tuple[str, str, Any]]:
        """The mutating (non-GET) admin calls, as (method, path, body)."""
        return [(c["method"], c["path"], c["body"]) for c in self.calls() if c["method"] != "GET"]

    def state(self) -> dict[str, Any]:
        return dict(self._get("/api/admin/_sandbox/state"))

    def outcome(self) -> dict[str, Any]:
        """What a rollout leaves behind: test status and percentage, the flags."""
        state = self.state()
        test = state["abTest"] or {}
        return {"test": test.get("status"), "percentage": test.get("rolloutPercentage"),
                "flags": state["flags"]}

    def lookup(self, capture: str) -> str:
        """What an operator reads on the target for a value a lost answer captured."""
        known = {"test_id": lambda: self.state()["abTest"]["testId"]}
        return str(known[capture]())

    def received(self, line: str) -> bool:
        """Whether a journaled call line ("METHOD URL") shows in the call log.

        Good enough for the demo plan, whose non-idempotent calls are each sent at most
        once per rollout: any entry with the method and path means the call arrived.
        """
        method, _, url = line.partition(" ")
        if not url.startswith(self.url):
            return False  # a local command: it never reaches the target
        path = urlsplit(url).path
        return any(c["method"] == method and c["path"] == path for c in self.calls())


@contextmanager
def serve(token: str | None = None, seed: int = SEED, hold: bool = False) -> Iterator[Target]:
    """A fresh healthy sandbox on a free loopback port for the block; with ``hold``, one
    whose ``target.hold`` can keep a call waiting (see Hold)."""
    app = create_sandbox("healthy", seed=seed, time_scale=TIME_SCALE, token=token)
    held = Hold(app) if hold else None
    with running_sandbox(held or app) as running:  # type: ignore[arg-type]
        target = Target(running.url, token, held)
        try:
            yield target
        finally:
            if held is not None:
                held.release()
            target.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of _SCRUBBED_ENV from the shell, and no colour codes in captured output."""
    for name in _SCRUBBED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def target(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    with serve() as running:
        monkeypatch.setenv("BRAIN_API_URL", running.url)
        yield running


@pytest.fixture
def held_target(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    """The target, with ``target.hold`` to keep one call waiting until released."""
    with serve(hold=True) as running:
        monkeypatch.setenv("BRAIN_API_URL", running.url)
        yield running


@pytest.fixture(scope="session")
def zygote() -> Iterator[Zygote]:
    """Forks `rollout` processes without a fresh interpreter's start-up (see forked.py)."""
    helper = Zygote()
    yield helper
    helper.close()


@pytest.fixture
def fast_plan(tmp_path: Path) -> Path:
    """The demo plan with 0s bakes and no analysis: only its calls, gates and rollback."""
    return derive_plan(tmp_path / "brain-api-fast.yaml")


@pytest.fixture
def strict_plan(tmp_path: Path) -> Path:
    """The fast plan with POST ab-testing/start non-idempotent, like the guide's script."""
    return derive_plan(tmp_path / "brain-api-strict.yaml", strict_start=True)


@pytest.fixture
def analysed_plan(tmp_path: Path) -> Path:
    """The demo plan with 0s bakes: a stage lasts until its analysis passes (~2 s)."""
    return derive_plan(tmp_path / "brain-api-analysed.yaml", analysis=True)


# --- the operator ----------------------------------------------------------------------


@dataclass
class Operator:
    """Runs `rollout` commands against one state dir: in-process (``op(...)``) or as a
    real `python -m rollout_cli` process (``op.process(...)``, ``op.spawn(...)``), and
    keeps everything they printed in ``outputs``."""

    in_process: Callable[..., CliResult]
    state_dir: Path | str       # a directory, or a postgresql:// URL (STORE_KINDS)
    cwd: Path
    outputs: list[str] = field(default_factory=list)

    def __call__(self, *args: str) -> CliResult:
        result = self.in_process(*args, "--state-dir", str(self.state_dir))
        self.outputs += [result.out, result.err]
        return result

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a child command: the test's (see clean_env), plus ``extra``."""
        return {**os.environ, **(extra or {})}

    def spawn(self, *args: str, env: Mapping[str, str] | None = None
              ) -> subprocess.Popen[str]:
        """`python -m rollout_cli ARGS...`; when ``env`` sets killpoints' variables, the
        same CLI through killpoints.py, which installs the SIGKILL first."""
        entry = ["-m", "rollout_cli"]
        if env and any(name in env for name in killpoints.ENV):
            entry = [killpoints.__file__]
        return subprocess.Popen(
            [sys.executable, *entry, *args, "--state-dir", str(self.state_dir)],
            cwd=self.cwd, env=self.env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)

    def finish(self, process: subprocess.Popen[str], timeout: float = 60.0) -> CliResult:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            raise AssertionError(f"{process.args} ran over {timeout}s:\n{out}\n{err}") from None
        self.outputs += [out, err]
        return CliResult(process.returncode, out, err)

    def process(self, *args: str, env: Mapping[str, str] | None = None,
                timeout: float = 60.0) -> CliResult:
        return self.finish(self.spawn(*args, env=env), timeout)

    @property
    def store(self) -> Store:
        """The store the commands share, for a test to look into or act on directly."""
        return open_store(self.state_dir)

    def status(self) -> dict[str, Any]:
        """`rollout status --output json` of the active (or else the newest) rollout."""
        return dict(json.loads(self("status", "--output", "json").out))

    def events(self, rollout_id: str | None = None) -> list[dict[str, Any]]:
        """The journal of the rollout (default: the only one), through the store API."""
        store = self.store
        if rollout_id is None:
            metas = store.list()
            assert len(metas) == 1, f"expected one rollout, found {[m.id for m in metas]}"
            rollout_id = metas[0].id
        return list(store.open(rollout_id).journal.events())

    def rollout_ids(self) -> list[str]:
        return [meta.id for meta in self.store.list()]


# The stores every command must behave the same on: a test runs on both with
# @ON_EVERY_STORE (its `operator` then keeps state in each in turn).
STORE_KINDS = ("directory", "postgres")
ON_EVERY_STORE = pytest.mark.parametrize("operator", STORE_KINDS, indirect=True)


@pytest.fixture
def operator(rollout: Callable[..., CliResult], tmp_path: Path, clean_env: None,
             request: pytest.FixtureRequest) -> Operator:
    """Commands on one store: a directory, or (``postgres``) a fresh PostgreSQL schema."""
    if getattr(request, "param", "directory") == "postgres":
        return Operator(rollout, request.getfixturevalue("pg_url"), tmp_path)
    return Operator(rollout, tmp_path / "state", tmp_path)


def killed_after(events: int) -> dict[str, str]:
    """The environment of a `rollout` process to SIGKILL right after its Nth journal append
    (see killpoints.py)."""
    return killpoints.kill_env(events, killpoints.JOURNAL_APPEND)


def unlock_hint(text: str) -> str:
    """The lock id from a lock refusal's `rollout unlock ID` hint."""
    match = re.search(r"rollout unlock ([0-9a-f-]{36})", text)
    assert match, f"no `rollout unlock ID` in:\n{text}"
    return match.group(1)


def read_until(process: subprocess.Popen[str], pattern: str, timeout: float,
               stream: str = "stdout") -> str:
    """``process``'s stdout (or ``stream``) up to the end of the first line that matches
    ``pattern``, read from the pipe's fd itself (a buffered reader could hold that line
    back while select() waits). What was read past that line is kept for the next call."""
    pipe = getattr(process, stream)
    assert pipe is not None
    fd = pipe.fileno()
    rest = f"_read_until_{stream}"
    seen = getattr(process, rest, "")
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while not (match := re.search(pattern, seen, re.MULTILINE)) and (
                left := deadline - time.monotonic()) > 0 and selector.select(left):
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            seen += chunk.decode()
    if match:
        end = seen.find("\n", match.end())
        end = len(seen) if end < 0 else end + 1
        setattr(process, rest, seen[end:])
        return seen[:end]
    raise AssertionError(f"no {pattern!r} within {timeout}s (exit {process.poll()}):\n{seen}")

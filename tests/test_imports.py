"""Start-up stays lazy: what each command imports, checked by module name, never by time.

Each case runs `rollout ARGS...` in a fresh interpreter (the import state of the test
process proves nothing) and looks at ``sys.modules`` when the command is done. Timing is
bench/startup.py's job; this only makes sure a top-level import cannot quietly bring back
httpx, PyYAML, jmespath, prometheus_client or rich where they are not used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PLANS

PROBE = """
import json, sys
out, args = sys.argv[1], json.loads(sys.argv[2])
sys.argv = ["rollout", *args]
from rollout_cli.cli.app import main
code = 0
try:
    main()
except SystemExit as stop:
    code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
with open(out, "w") as file:
    json.dump({"code": code, "modules": sorted(sys.modules)}, file)
"""

NEVER_AT_START = ("httpx", "yaml", "jmespath", "prometheus_client", "rich")
# Only a compare check that judges needs them (engine/compare.py): never validate or status.
STATISTICS = ("scipy", "numpy", "rollout_cli.engine.compare")
NETWORK = ("httpx", "httpcore", "prometheus_client", "rollout_cli.drivers.http",
           "rollout_cli.drivers.metrics", "rollout_cli.notify", "rollout_cli.reconcile")

TINY_PLAN = """\
version: 1
name: tiny
target: {base_url: "http://127.0.0.1:9"}
stages:
  - name: only
    steps:
      - run: ["true"]
rollback:
  - run: ["true"]
"""


def imported(tmp_path: Path, *args: str) -> tuple[int, set[str]]:
    """Run `rollout ARGS...` in a new interpreter: its exit code and the modules it loaded."""
    out = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if k not in ("ROLLOUT_STATE", "ROLLOUT_STATE_DIR", "NO_COLOR")}
    subprocess.run([sys.executable, "-c", PROBE, str(out), json.dumps(args)], cwd=tmp_path,
                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   timeout=120)
    found = json.loads(out.read_text())
    return found["code"], set(found["modules"])


def loaded(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


def command_modules(modules: set[str]) -> list[str]:
    """The modules of rollout_cli.cli that hold commands (app's table names them)."""
    from rollout_cli.cli.app import COMMANDS

    homes = {f"rollout_cli.cli.{target.partition(':')[0]}" for target in COMMANDS.values()}
    return sorted(modules & homes)


@pytest.mark.parametrize("args", [("--help",), ("--version",)], ids=["help", "version"])
def test_help_and_version_import_nothing_heavy(tmp_path: Path, args: tuple[str, ...]):
    code, modules = imported(tmp_path, *args)

    assert code == 0
    assert loaded(modules, NEVER_AT_START) == []
    assert loaded(modules, ("rollout_cli.plan", "rollout_cli.engine", "rollout_cli.store")) == []


def test_version_builds_no_command_and_a_command_only_its_own(tmp_path: Path):
    _, version = imported(tmp_path, "--version")
    _, status = imported(tmp_path, "status", "--state-dir", str(tmp_path / "state"))

    assert command_modules(version) == []
    assert command_modules(status) == ["rollout_cli.cli.status_command"]


def test_validate_imports_no_network_code(tmp_path: Path):
    code, modules = imported(tmp_path, "validate", str(PLANS / "brain-api.yaml"))

    assert code == 0
    assert "rollout_cli.plan.models" in modules   # the plan really was loaded
    assert loaded(modules, NETWORK) == []
    assert loaded(modules, ("rich", "hashlib")) == []   # plain lines; no digest to keep
    assert loaded(modules, STATISTICS) == []


def test_status_with_nothing_to_show_imports_neither_plan_nor_engine(tmp_path: Path):
    code, modules = imported(tmp_path, "status", "--state-dir", str(tmp_path / "state"))

    assert code == 2   # no rollout to show
    assert loaded(modules, NETWORK) == []
    assert loaded(modules, ("yaml", "jmespath", "rollout_cli.engine", "rollout_cli.plan.loader",
                            "rollout_cli.plan.models")) == []


def test_status_of_a_finished_rollout_imports_no_network_code(tmp_path: Path):
    plan = tmp_path / "tiny.yaml"
    plan.write_text(TINY_PLAN)
    state = str(tmp_path / "state")
    finished = subprocess.run([sys.executable, "-m", "rollout_cli", "run", str(plan),
                               "--auto-approve", "--output", "json", "--state-dir", state],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              check=False)
    assert finished.returncode == 0, finished.stderr

    code, modules = imported(tmp_path, "status", "--state-dir", state)

    assert code == 0
    assert "rollout_cli.plan.loader" in modules   # status shows the plan's side too
    assert loaded(modules, NETWORK) == []
    # The PostgreSQL store is named in location.py's table; a directory never loads it.
    assert loaded(modules, ("psycopg", "rollout_cli.store.postgres")) == []
    assert loaded(modules, STATISTICS) == []


def test_simulate_imports_no_prometheus_client(tmp_path: Path):
    code, modules = imported(tmp_path, "simulate", str(PLANS / "brain-api-demo.yaml"),
                             "--output", "json")

    assert code in (0, 1, 3)   # finished, rolled back or paused: the simulation ran
    assert "rollout_cli.sandbox.model" in modules
    assert loaded(modules, ("prometheus_client",)) == []


def test_a_healthy_simulation_judges_its_compare_checks_without_scipy(tmp_path: Path):
    # scipy.stats takes half a second to import: only a failing Mann-Whitney verdict
    # (its p-value) needs it; numpy, for the intervals, is enough otherwise.
    code, modules = imported(tmp_path, "simulate", str(PLANS / "brain-api.yaml"),
                             "--output", "json")

    assert code == 0                                   # succeeded: every check passed
    assert "rollout_cli.engine.compare" in modules     # the compare checks were judged
    assert loaded(modules, ("scipy",)) == []


def test_simulate_imports_no_retry_threads_commands_or_store(tmp_path: Path):
    # The in-process sandbox answers every first try, one request at a time; a simulation
    # runs no local command and keeps its journal in memory.
    code, modules = imported(tmp_path, "simulate", str(PLANS / "brain-api.yaml"),
                             "--output", "json")

    assert code in (0, 1, 3)
    assert "rollout_cli.drivers.http" in modules   # the same driver as a real run
    assert loaded(modules, ("tenacity", "concurrent.futures", "rollout_cli.drivers.command",
                            "rollout_cli.store.journal", "rollout_cli.store.locks",
                            "rollout_cli.store.directory", "rollout_cli.store.snapshot")) == []

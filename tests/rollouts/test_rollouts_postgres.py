"""Rollouts whose state is in PostgreSQL, as a team uses it: machines that share nothing
but the database URL, a crash after every journal write, the database itself killed and
restarted mid-bake, and a URL whose password never shows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, CliResult
from tests.pg_server import PASSWORD, PgServer, dump_schema
from tests.rollouts import killpoints
from tests.rollouts.conftest import Operator, Target, derive_plan, read_until, serve
from tests.rollouts.forked import Zygote
from tests.rollouts.test_rollouts_crash import TOOK_OVER, _repeated, recover


class Machine:
    """`python -m rollout_cli` with a working directory and HOME of its own, and the state
    only in $ROLLOUT_STATE: another machine, as far as rollout can tell."""

    def __init__(self, name: str, tmp_path: Path, url: str):
        self.cwd = tmp_path / name / "work"
        self.home = tmp_path / name / "home"
        self.cwd.mkdir(parents=True)
        self.home.mkdir(parents=True)
        self.url = url

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        env = {**os.environ, "HOME": str(self.home), "ROLLOUT_STATE": self.url,
               "PYTHONPATH": str(ROOT)}
        return subprocess.Popen([sys.executable, "-m", "rollout_cli", *args], cwd=self.cwd,
                                env=env, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    def __call__(self, *args: str) -> CliResult:
        process = self.spawn(*args)
        out, err = process.communicate(timeout=120)
        return CliResult(process.returncode, out, err)


def test_one_machine_starts_a_rollout_another_sees_it_opens_its_gate_and_rolls_it_back(
        target: Target, fast_plan: Path, tmp_path: Path, pg_url: str):
    ci, laptop = Machine("ci", tmp_path, pg_url), Machine("laptop", tmp_path, pg_url)

    started = ci("start", str(fast_plan))
    assert started.code == 3, started.err                   # waits at canary-10's gate
    listed = laptop("list", "--output", "json")
    [seen] = json.loads(listed.out)
    assert seen["phase"] == "waiting-gate"
    assert seen["rollout"] in started.out
    assert json.loads(laptop("status", "--output", "json").out)["stage"] == "canary-10"

    advanced = laptop("advance")
    assert advanced.code == 3, advanced.err                 # on to the next gate
    assert json.loads(ci("status", "--output", "json").out)["stage"] == "full"
    rolled = laptop("rollback", "--yes", "--reason", "3 a.m. page")
    assert rolled.code == 1, rolled.err

    status = json.loads(ci("status", "--output", "json").out)
    assert status["phase"] == "rolled-back"
    assert [path for _, path, _ in target.changes()][-4:] == [
        "/api/admin/feature-flags/disable", "/api/admin/ab-testing/emergency-stop",
        "/api/admin/memory/cleanup", "/api/admin/alerts/emergency"]
    for machine in (ci, laptop):     # nothing was kept on either machine
        assert list(machine.cwd.iterdir()) == [] and list(machine.home.iterdir()) == []


def test_two_advances_from_two_machines_one_acts_the_other_gets_the_lock_record(
        target: Target, tmp_path: Path, pg_url: str):
    slow = 'steps: [{name: slow step, run: [sleep, "2"], timeout: 10s}]'
    plan = derive_plan(tmp_path / "slow.yaml", extra={"canary-25": slow})
    one, other = Machine("one", tmp_path, pg_url), Machine("other", tmp_path, pg_url)
    assert one("start", str(plan)).code == 3

    first, second = one.spawn("advance"), other.spawn("advance")
    results = sorted((CliResult(p.wait(120), p.stdout.read(), p.stderr.read())  # type: ignore[union-attr]
                      for p in (first, second)), key=lambda result: result.code)

    assert [result.code for result in results] == [3, 4], [r.err for r in results]
    refused = results[1].err
    for part in ("Lock Info:", "ID:", "Who:", "Operation: advance", "Pid:", "Created:"):
        assert part in refused
    assert "still running" in refused


def test_the_crash_sweep_on_postgres_every_journal_write_then_resume(
        rollout: Callable[..., CliResult], zygote: Zygote, fast_plan: Path, tmp_path: Path,
        pg_server: PgServer, clean_env: None, monkeypatch: pytest.MonkeyPatch):
    log = tmp_path / "writes.log"
    reference = Operator(rollout, pg_server.schema_url(), tmp_path)
    with serve() as target:
        done = zygote.run(["run", str(fast_plan), "--auto-approve", "--state",
                           str(reference.state_dir)],
                          {**reference.env(), "BRAIN_API_URL": target.url,
                           killpoints.WRITE_LOG: str(log)}, tmp_path)
        assert done.code == 0, done.err
        expected = (reference.events(), target.changes(), target.outcome())
    writes = log.read_text().split()
    assert set(writes) == {killpoints.JOURNAL_APPEND}
    assert len(writes) == len(expected[0])  # its creation, then one append per event

    problems = []
    for n in range(1, len(writes) + 1):
        operator = Operator(rollout, pg_server.schema_url(), tmp_path)
        with serve() as target:
            monkeypatch.setenv("BRAIN_API_URL", target.url)
            crashed = zygote.run(["run", str(fast_plan), "--auto-approve", "--state",
                                  str(operator.state_dir)],
                                 {**operator.env(), **killpoints.kill_env(n)}, tmp_path)
            try:
                assert crashed.code == -9, crashed.err
                assert len(operator.events() if n > 1 else operator.rollout_ids()) == (
                    n if n > 1 else 1)
                recover(operator, target, fast_plan)
                events = operator.events()
                notes = [e["text"] for e in events if e["type"] == "note"]
                assert all(note.startswith(TOOK_OVER) for note in notes), notes
                assert [e["type"] for e in events if e["type"] != "note"][-1] == "succeeded"
                assert target.changes() == expected[1]
                assert target.outcome() == expected[2]
                assert _repeated(target.changes()) == []
                assert operator.store.held_locks() == []
                assert operator.store.find_active() == []
            except AssertionError as problem:
                problems.append(f"crash after write {n}: {problem}")
    assert problems == [], "\n\n".join(problems)


@pytest.fixture(scope="module")
def own_server() -> Iterator[PgServer]:
    """A server of this module's own, to kill without disturbing the other tests."""
    server = PgServer()
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("away", ["shorter than the retry", "longer than the retry"])
def test_the_database_killed_mid_bake_then_restarted_loses_nothing(
        target: Target, tmp_path: Path, own_server: PgServer,
        away: str):
    url = own_server.schema_url(retry="30" if away.startswith("shorter") else "1")
    plan = derive_plan(tmp_path / "bake.yaml", bakes={"validate": "4s"})
    machine = Machine("ci", tmp_path, url)
    follower = machine.spawn("run", str(plan), "--auto-approve")
    read_until(follower, r"^\S+ +baking$", timeout=60)

    own_server.kill()     # the bake goes on; its end is journaled with the database away
    if away.startswith("shorter"):
        restart = threading.Timer(6.0, own_server.start)
        restart.start()
        try:
            out, err = follower.communicate(timeout=120)
        finally:
            restart.join()
        assert follower.returncode == 0, err         # it waited for the database
    else:
        out, err = follower.communicate(timeout=120)
        assert follower.returncode == 5, err
        assert f"the state database at 127.0.0.1:{own_server.port}/postgres did not answer" in err
        own_server.start()
        resumed = machine("resume", "--follow", "--auto-approve")
        assert resumed.code == 0, resumed.err
        out, err = out + resumed.out, err + resumed.err
    assert PASSWORD not in out + err
    status = json.loads(machine("status", "--output", "json").out)
    assert status["phase"] == "succeeded"
    assert _repeated(target.changes()) == []
    updates = [body for _, path, body in target.changes() if path.endswith("ab-testing/update")]
    assert updates == [{"rolloutPercentage": p} for p in (10, 25, 50, 75, 100)]


def test_the_state_urls_password_is_never_printed_or_stored(
        operator: Operator, target: Target, fast_plan: Path, pg_server: PgServer,
        tmp_path: Path):
    operator.state_dir = pg_server.schema_url()
    outputs = [operator("run", str(fast_plan), "--auto-approve"),
               operator("status"), operator("status", "--output", "json"),
               operator("history"), operator("list"),
               operator("report", "--format", "html", "--out", str(tmp_path / "report.html")),
               operator("report")]
    wrong = Operator(operator.in_process, str(operator.state_dir).replace(
        PASSWORD, "wrong-pw-9876"), tmp_path)
    refused = wrong("status")
    away = Operator(operator.in_process, str(operator.state_dir).replace(
        str(pg_server.port), "1") + "&retry=0.5", tmp_path)
    unreachable = away("status")

    assert [result.code for result in outputs] == [0, 0, 0, 0, 0, 0, 0]
    assert refused.code == 2 and "refused the login" in refused.err
    assert "wrong-pw-9876" not in refused.out + refused.err
    assert unreachable.code == 5 and "127.0.0.1:1/postgres did not answer" in unreachable.err
    everything = [*operator.outputs, *wrong.outputs, *away.outputs,
                  (tmp_path / "report.html").read_text()]
    assert [text for text in everything if PASSWORD in text] == []
    assert [row for row in dump_schema(str(operator.state_dir)) if PASSWORD in row[1]] == []


def test_another_machine_finds_the_plan_in_its_own_checkout_once_ci_s_workspace_is_gone(
        target: Target, fast_plan: Path, tmp_path: Path, pg_url: str):
    """CI starts with the plan's path as given (plans/brain-api.yaml, relative); its
    workspace is deleted when the job ends. An operator's checkout has the plan at the same
    relative path: status shows its stages and advance acts. A checkout whose plan differs
    is refused as a changed plan; one without it is told what to do."""
    ci, laptop, stale, bare = (Machine(name, tmp_path, pg_url)
                               for name in ("ci", "laptop", "stale", "bare"))
    for machine in (ci, laptop, stale):
        (machine.cwd / "plans").mkdir()
        (machine.cwd / "plans" / "brain-api.yaml").write_bytes(fast_plan.read_bytes())
    with (stale.cwd / "plans" / "brain-api.yaml").open("a") as plan:
        plan.write("# edited since\n")
    assert ci("start", "plans/brain-api.yaml").code == 3      # at canary-10's gate
    shutil.rmtree(ci.cwd)                                      # the job ended

    status = json.loads(laptop("status", "--output", "json").out)
    assert status["stage"] == "canary-10" and status["stages"] == 9   # the plan was read
    advanced = laptop("advance")
    assert advanced.code == 3, advanced.err                    # on to the next gate
    assert json.loads(laptop("status", "--output", "json").out)["stage"] == "full"

    changed = stale("advance")
    assert changed.code == 2 and "changed since rollout" in changed.err, changed.err
    missing = bare("advance")
    assert missing.code == 2, missing.err
    assert "is not on this machine" in missing.err and "(plans/brain-api.yaml)" in missing.err
    assert "Traceback" not in missing.err + changed.err

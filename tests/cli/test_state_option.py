"""`--state LOCATION` chooses the store for every command that touches state: before the
command (`rollout --state DIR status`) or after it, under its older name --state-dir, or
from $ROLLOUT_STATE / $ROLLOUT_STATE_DIR; never ./.rollout when one of them is given."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from rollout_cli.store import open_store
from tests.conftest import CliResult
from tests.rollouts.conftest import Target

Rollout = Callable[..., CliResult]

# command -> (its arguments, the exit code it ends with, what it must print) when run
# with `rollout --state STATE` on a rollout of the fast plan waiting at its first gate
# (except start and run, which make their own).
COMMANDS = {
    "start": (["start", "{plan}"], 3, "{id}"),
    "run": (["run", "{plan}", "--auto-approve"], 0, "succeeded"),
    "advance": (["advance"], 3, "{id}"),
    "status": (["status"], 3, "{id}"),
    "pause": (["pause", "--reason", "drill"], 3, "drill"),
    "resume": (["resume"], 3, "{id}"),
    "rollback": (["rollback", "--yes"], 1, "rolled-back"),
    "list": (["list"], 0, "{id}"),
    "history": (["history"], 0, "rollout created from"),
    "report": (["report"], 0, "{id}"),
    "repair": (["repair", "--yes"], 0, "nothing to repair: the journal of {id}"),
    "unlock": (["unlock", "{lock}"], 0, "released lock {lock}"),
}


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None) -> Path:
    """The working directory, whose ./.rollout no command given a location may touch."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.mark.parametrize("store", ["directory", "postgres"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_keeps_state_where_the_root_state_option_says(
        rollout: Rollout, target: Target, fast_plan: Path, here: Path, tmp_path: Path,
        command: str, store: str, request: pytest.FixtureRequest):
    # The same command, exit code and output whichever store holds the state.
    state = tmp_path / "elsewhere" if store == "directory" else request.getfixturevalue("pg_url")
    args, code, shown = COMMANDS[command]
    fill = {"plan": str(fast_plan), "id": "", "lock": ""}
    if command not in ("start", "run"):
        # Started the way scripts have done so far: --state-dir after the command.
        assert rollout("start", str(fast_plan), "--state-dir", str(state)).code == 3
        [fill["id"]] = [meta.id for meta in open_store(state).list()]
    if command == "unlock":
        held = open_store(state).open(fill["id"]).lock("advance")
        fill["lock"] = held.acquire()["id"]

    result = rollout("--state", str(state), *(arg.format(**fill) for arg in args))

    assert result.code == code, result.err
    [made] = open_store(state).list()
    assert shown.format(**{**fill, "id": made.id}) in result.out
    assert not (here / ".rollout").exists()
    assert open_store(state).held_locks() == []


def test_the_demo_keeps_its_rollout_where_the_state_option_says(
        rollout: Rollout, here: Path, tmp_path: Path):
    state = tmp_path / "demo-state"

    result = rollout("--state", str(state), "demo", "--speed", "20", "--output", "json")

    assert result.code == 0, result.err
    [made] = open_store(state).list()
    assert json.loads(result.out)["rollout"] == made.id
    assert not (here / ".rollout").exists()


@pytest.mark.parametrize("given", [
    ["--state", "{state}", "list"],
    ["--state-dir", "{state}", "list"],
    ["list", "--state", "{state}"],
    ["list", "--state-dir", "{state}"],
    ["--state", "{state}", "list", "--state-dir", "{state}"],
])
def test_the_state_can_be_given_before_or_after_the_command_by_either_name(
        rollout: Rollout, target: Target, fast_plan: Path, here: Path, tmp_path: Path,
        given: list[str]):
    state = tmp_path / "elsewhere"
    assert rollout("start", str(fast_plan), "--state-dir", str(state)).code == 3

    listed = rollout(*(arg.format(state=state) for arg in given))

    assert listed.code == 0, listed.err
    assert open_store(state).list()[0].id in listed.out


@pytest.mark.parametrize("variable", ["ROLLOUT_STATE", "ROLLOUT_STATE_DIR"])
def test_the_environment_names_the_state_when_no_option_does(
        rollout: Rollout, target: Target, fast_plan: Path, here: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, variable: str):
    monkeypatch.setenv(variable, str(tmp_path / "from-env"))

    started = rollout("start", str(fast_plan))
    flagged = rollout("--state", str(tmp_path / "flagged"), "list")

    assert started.code == 3, started.err
    assert [meta.id for meta in open_store(tmp_path / "from-env").list()] == [
        json.loads(rollout("status", "--output", "json").out)["rollout"]]
    assert (flagged.code, flagged.out.strip()) == (0, "no rollouts yet")  # the flag wins
    assert not (here / ".rollout").exists()


def test_without_a_location_the_state_is_dot_rollout_here(
        rollout: Rollout, target: Target, fast_plan: Path, here: Path):
    assert rollout("start", str(fast_plan)).code == 3

    assert len(open_store(here / ".rollout").list()) == 1


@pytest.mark.parametrize(("args", "env", "named"), [
    (["--state", "a", "list", "--state-dir", "b"], {}, "--state a and --state-dir b"),
    (["--state", "a", "status", "--state", "b"], {}, "--state a and --state b"),
    (["list"], {"ROLLOUT_STATE": "a", "ROLLOUT_STATE_DIR": "b"},
     "ROLLOUT_STATE=a and ROLLOUT_STATE_DIR=b"),
])
def test_two_different_locations_are_refused_naming_both(
        rollout: Rollout, here: Path, monkeypatch: pytest.MonkeyPatch, args: list[str],
        env: dict[str, str], named: str):
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    refused = rollout(*args)

    assert refused.code == 2
    assert f"{named} name different state locations; give one" in refused.err
    assert refused.out == ""
    assert not any(here.iterdir())


@pytest.mark.parametrize("args", [
    ["--state", "{url}", "status"],
    ["history", "--state", "{url}"],
    ["--state", "{url}", "demo"],
])
def test_a_url_no_store_reads_is_refused_without_its_password(
        rollout: Rollout, here: Path, args: list[str]):
    url = "mysql://rollout:hunter22@db.internal/rollouts"

    refused = rollout(*(arg.format(url=url) for arg in args))

    assert refused.code == 2
    assert ("--state mysql://rollout:***@db.internal/rollouts: no store reads "
            "mysql:// locations") in refused.err
    assert "hunter22" not in refused.err + refused.out
    assert not any(here.iterdir())


def test_a_command_that_keeps_no_state_ignores_the_state_location(
        rollout: Rollout, here: Path, monkeypatch: pytest.MonkeyPatch, fast_plan: Path):
    monkeypatch.setenv("ROLLOUT_STATE", "postgresql://rollout:hunter22@db.internal/rollouts")

    assert rollout("validate", str(fast_plan)).code == 0
    assert rollout("--state", "postgresql://x/y", "plan", str(fast_plan)).code == 0

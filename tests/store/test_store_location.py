"""Where the state is: --state (or its old name --state-dir), then $ROLLOUT_STATE (or
$ROLLOUT_STATE_DIR), then ./.rollout; and which store a location opens."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollout_cli.errors import UsageError
from rollout_cli.store import DirectoryStore, open_store
from rollout_cli.store.location import choose


@pytest.mark.parametrize(("flags", "env", "chosen"), [
    ([("--state", "/flag")], {"ROLLOUT_STATE": "/env"}, ("/flag", "--state")),
    ([("--state-dir", "/old-flag")], {"ROLLOUT_STATE": "/env"}, ("/old-flag", "--state-dir")),
    ([("--state", None), ("--state-dir", "/old-flag")], {}, ("/old-flag", "--state-dir")),
    ([("--state", "/same"), ("--state-dir", "/same/")], {}, ("/same", "--state")),
    ([], {"ROLLOUT_STATE": "/env"}, ("/env", "ROLLOUT_STATE")),
    ([], {"ROLLOUT_STATE_DIR": "/old-env"}, ("/old-env", "ROLLOUT_STATE_DIR")),
    ([("--state", "")], {"ROLLOUT_STATE": "", "ROLLOUT_STATE_DIR": ""}, None),
    ([], {}, None),
])
def test_a_flag_wins_over_the_environment_and_nothing_given_is_none(
    flags: list[tuple[str, str | None]], env: dict[str, str], chosen: tuple[str, str] | None
) -> None:
    assert choose(flags, env) == chosen


@pytest.mark.parametrize(("flags", "env", "named"), [
    ([("--state", "a"), ("--state-dir", "b")], {}, "--state a and --state-dir b"),
    ([("--state", "a"), ("--state", "b")], {}, "--state a and --state b"),
    ([], {"ROLLOUT_STATE": "a", "ROLLOUT_STATE_DIR": "b"},
     "ROLLOUT_STATE=a and ROLLOUT_STATE_DIR=b"),
])
def test_two_different_locations_are_refused_naming_both(
    flags: list[tuple[str, str | None]], env: dict[str, str], named: str
) -> None:
    with pytest.raises(UsageError, match=f"^{named} name different state locations; give one$"):
        choose(flags, env)


def test_relative_locations_that_name_one_directory_agree(tmp_path: Path) -> None:
    flags = [("--state", "state"), ("--state-dir", str(tmp_path / "state"))]

    assert choose(flags, {}, cwd=tmp_path) == ("state", "--state")


def test_a_directory_location_opens_the_directory_store(tmp_path: Path) -> None:
    store = open_store("state", cwd=tmp_path)

    assert isinstance(store, DirectoryStore)
    assert store.root == tmp_path / "state"
    assert open_store(tmp_path / "abs").root == tmp_path / "abs"  # type: ignore[attr-defined]


def test_the_default_is_dot_rollout_in_the_working_directory(tmp_path: Path) -> None:
    assert open_store(cwd=tmp_path).root == tmp_path / ".rollout"  # type: ignore[attr-defined]


def test_a_url_of_an_unknown_scheme_is_refused_without_its_password() -> None:
    location = "mysql://rollout:hunter22@db.internal:5432/rollouts?password=hunter33"

    with pytest.raises(UsageError) as refused:
        open_store(location, given_as="ROLLOUT_STATE")

    message = str(refused.value)
    assert message == (
        "ROLLOUT_STATE=mysql://rollout:***@db.internal:5432/rollouts?password=***: no "
        "store reads mysql:// locations; give a directory's path or a postgresql://, "
        "postgres:// URL")
    assert refused.value.exit_code == 2


def test_conflicting_urls_are_named_without_their_passwords() -> None:
    flags = [("--state", "postgresql://u:secret1@a/x"), ("--state-dir", "/var/state")]

    with pytest.raises(UsageError, match=r"^--state postgresql://u:\*\*\*@a/x and --state-dir "
                                         r"/var/state name"):
        choose(flags, {})

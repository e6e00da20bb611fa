"""Which store holds rollout state: ``--state LOCATION``, else $ROLLOUT_STATE, else
./.rollout. ``--state-dir`` and $ROLLOUT_STATE_DIR are older names of the same.

A location is a directory path, or a URL naming a store by its scheme in STORES: a new
store is a module of this package and one line there. This is the one place that makes
a store from a location.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rollout_cli.errors import UsageError

if TYPE_CHECKING:
    from rollout_cli.store.protocol import Store

STATE_ENV = "ROLLOUT_STATE"
STATE_DIR_ENV = "ROLLOUT_STATE_DIR"
DEFAULT_LOCATION = ".rollout"

# URL scheme -> "module:callable", called with the location to make its Store.
STORES: dict[str, str] = {
    "postgresql": "rollout_cli.store.postgres:PostgresStore",
    "postgres": "rollout_cli.store.postgres:PostgresStore",
}

_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def choose(flags: Sequence[tuple[str, str | None]],
           env: Mapping[str, str] | None = None,
           cwd: Path | None = None) -> tuple[str, str] | None:
    """The location given, and by what: the first of the ``(option, value)`` pairs given,
    else $ROLLOUT_STATE or $ROLLOUT_STATE_DIR; None when none is. Flags outrank the
    environment; two that name different locations are a UsageError naming both."""
    environ = os.environ if env is None else env
    for given in ([(name, value) for name, value in flags if value],
                  [(name, environ[name]) for name in (STATE_ENV, STATE_DIR_ENV)
                   if environ.get(name)]):
        if not given:
            continue
        (first_name, first), *others = given
        for name, value in others:
            if _canonical(value, cwd) != _canonical(first, cwd):
                raise UsageError(f"{_given(first_name, first)} and {_given(name, value)} name "
                                 "different state locations; give one")
        return first, first_name
    return None


def open_store(location: str | os.PathLike[str] = DEFAULT_LOCATION, given_as: str = "--state",
               cwd: Path | None = None) -> Store:
    """The store at ``location`` (``given_as`` names where it came from, for errors)."""
    text = os.fspath(location)
    url = _URL.match(text)
    if url is None:
        from rollout_cli.store.directory import DirectoryStore

        return DirectoryStore(_directory(text, cwd))
    scheme = url.group(1).lower()
    if scheme not in STORES:
        known = ", ".join(f"{name}://" for name in STORES)
        raise UsageError(f"{_given(given_as, text)}: no store reads {scheme}:// locations; "
                         f"give a directory's path or a {known} URL")
    module, _, factory = STORES[scheme].partition(":")
    store: Store = getattr(importlib.import_module(module), factory)(text)
    return store


def _directory(text: str, cwd: Path | None) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else (cwd or Path.cwd()) / path


def _canonical(text: str, cwd: Path | None) -> str:
    return text if _URL.match(text) else os.path.normpath(_directory(text, cwd))


def _given(name: str, value: str) -> str:
    """``--state VALUE`` or ``NAME=VALUE``, a URL's credentials masked."""
    shown = value
    if _URL.match(value):
        from rollout_cli.redact import Redactor, redact_url

        shown = redact_url(value, Redactor())
    return f"{name}={shown}" if name.isupper() else f"{name} {shown}"

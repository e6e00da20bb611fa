"""Where rollout state lives on disk.

<root>/                               --state DIR (see location.py), default ./.rollout
  rollouts/<rollout-id>/              published by renaming a complete .creating-<id>-<hex>/
    rollout.json                      metadata (atomic)
    journal.jsonl                     append-only events, one JSON object a line; the
                                      first is the rollout's `created` event
    journal.jsonl.corrupt-<time>      a damaged tail moved aside by JournalFile.repair()
    snapshot.json                     folded state up to a seq (atomic)
    lock.json                         present while a command changes the rollout
    lease.json                        who drives it, until when (lease.py)
    .lock.json.guard                  flock'd while a lock file is removed or taken over
  rollouts/.abandoned-<rollout-id>/   an older version's rollout that never got an event
  active/<plan-name>                  the id of the plan's running rollout
  plan-locks/<plan-name>.json         lock for commands that have no rollout yet, and for
                                      creating a rollout of the plan
"""

from __future__ import annotations

import re

from rollout_cli.errors import StateError

ROLLOUTS_DIR = "rollouts"
ACTIVE_DIR = "active"
PLAN_LOCKS_DIR = "plan-locks"
META_FILE = "rollout.json"
JOURNAL_FILE = "journal.jsonl"
SNAPSHOT_FILE = "snapshot.json"
LOCK_FILE = "lock.json"
LEASE_FILE = "lease.json"

# Plan names and rollout ids become file names: nothing that could climb out of the root.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_name(kind: str, name: str) -> str:
    """``name`` unchanged if it is safe as a file name, else a StateError saying why."""
    if not is_safe_name(name):
        raise StateError(
            f"{kind} {name!r} cannot name a state file: use up to 128 letters, digits,"
            " '.', '_' and '-', starting with a letter or digit"
        )
    return name


def is_safe_name(name: str) -> bool:
    """Whether ``name`` can name a state file (see ``check_name``)."""
    return _SAFE_NAME.fullmatch(name) is not None

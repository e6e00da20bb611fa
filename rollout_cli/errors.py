"""The one exception tree of rollout.

    RolloutError                 base; carries the process exit code
     ├── PlanError               invalid plan: every Problem with file:line:column  (exit 2)
     ├── UsageError              bad flags or arguments                             (exit 2)
     ├── TargetError             target or metric source unreachable after retries  (exit 5)
     ├── LockedError             another process holds the rollout's lock           (exit 4)
     ├── NotAtStage              the rollout is not at the stage a command named    (exit 3)
     └── StateError              missing, corrupt or conflicting rollout state      (exit 2)
          ├── IllegalTransition  the engine was asked for a transition its table forbids
          ├── StateWriteError    the disk refused a state write (full, read-only):  (exit 6)
          │                      the rollout may have acted since its last journaled event
          └── StateUnreachable   the state database could not be reached in time    (exit 5)

Lower-level errors (yaml, plan fields, httpx, OSError) are mapped onto this tree at one
edge each, with ``raise ... from exc``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_WAITING = 3
EXIT_LOCKED = 4
EXIT_UNREACHABLE = 5
EXIT_STATE_WRITE = 6


@dataclass(frozen=True, order=True)
class Problem:
    """One located complaint about a plan."""

    file: str
    line: int
    column: int
    message: str
    hint: str | None = field(default=None, compare=False)
    severity: str = field(default="error", compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "column": self.column,
                "severity": self.severity, "message": self.message, "hint": self.hint}

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.column}: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class RolloutError(Exception):
    exit_code = EXIT_FAILED


class UsageError(RolloutError):
    exit_code = EXIT_INVALID


class PlanError(RolloutError):
    exit_code = EXIT_INVALID

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class TargetError(RolloutError):
    exit_code = EXIT_UNREACHABLE

    def __init__(self, message: str, request: str | None = None):
        self.request = request  # already redacted by the caller
        super().__init__(f"{message} ({request})" if request else message)


class LockedError(RolloutError):
    exit_code = EXIT_LOCKED

    def __init__(self, message: str, record: dict[str, Any] | None = None):
        self.record = record or {}
        super().__init__(message)


class NotAtStage(RolloutError):
    exit_code = EXIT_WAITING


class StateError(RolloutError):
    exit_code = EXIT_INVALID


class StateWriteError(StateError):
    """Raised where the store fails to write (journal, snapshot, metadata, claim, lock).

    Apart from exit 2, because nothing about the input was wrong, and what the command
    was doing may be half done: the journal tells how far it got.
    """

    exit_code = EXIT_STATE_WRITE


class IllegalTransition(StateError):
    def __init__(self, phase: str, event: str):
        self.phase = phase
        self.event = event
        super().__init__(f"illegal transition: event {event!r} in phase {phase!r}")


class StateUnreachable(StateError):
    """The store's server (a PostgreSQL database) did not answer within its retry time.

    Exit 5 like an unreachable target: nothing about the input was wrong, and nothing was
    sent that could not be journaled first; once the database is back, ``resume``
    continues."""

    exit_code = EXIT_UNREACHABLE

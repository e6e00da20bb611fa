"""Who is acting: user@host for records, and whether a recorded process still runs."""

from __future__ import annotations

import getpass
import os
import socket


def hostname() -> str:
    return socket.gethostname()


def user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        # Containers often run as a uid with no passwd entry and no $USER.
        return str(os.getuid())


def who() -> str:
    return f"{user()}@{hostname()}"


def host_of(who_value: str) -> str:
    return who_value.rpartition("@")[2]


def pid_alive(pid: int) -> bool:
    """True unless ``pid`` certainly names no running process on this host."""
    if pid <= 0:
        return True  # 0 and negatives address process groups: never probe them
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True

"""Who is acting: user@host for records, and whether a recorded process still runs."""

from __future__ import annotations

import getpass
import os
import socket
from pathlib import Path


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


def process_start(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot; None where /proc does not say.

    With the pid it tells one process from a later one given the same pid (a restarted
    container's pid 1), without comparing wall clocks.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        # Fields after the command name, which is in parentheses and may hold anything.
        return int(stat[stat.rindex(b")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def boot_id() -> str | None:
    """This boot of this host (Linux); None where unknown."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None

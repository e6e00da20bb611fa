"""The agent as a process: its lock, its drivers, its HTTP server, and how it stops.

On a directory store one agent runs per directory: it holds ``agent.json`` there (a lock
like a rollout's, taken over when its process is gone), and a second agent exits 4 naming
the holder. Stores shared by several machines (PostgreSQL) let several agents run, the
rollouts' leases deciding which drives what. SIGTERM or SIGINT: no new work is started,
each driver finishes the call in flight and journals it, the leases are released, exit 0.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollout_cli.errors import LockedError, UsageError

AGENT_LOCK = "agent.json"
DEFAULT_LISTEN = "127.0.0.1:9797"


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Listen:
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise UsageError(f"--listen {text!r}: expected HOST:PORT, e.g. {DEFAULT_LISTEN}")
        return cls(host.strip("[]"), int(port))


def log_line(text: str) -> None:
    stamp = time.strftime("%H:%M:%S", time.gmtime())
    print(f"{stamp}  {text}", file=sys.stderr, flush=True)


def agent_lock(store: Any, name: str) -> Any:
    """The directory store's agent lock (None for stores that several agents share)."""
    root = getattr(store, "root", None)
    if not isinstance(root, Path):
        return None
    from rollout_cli.store.atomic import ensure_dir, state_write
    from rollout_cli.store.locks import LockFile

    with state_write(f"create {root}"):
        ensure_dir(root)
    return LockFile(root / AGENT_LOCK, f"agent of state directory {root}", f"agent {name}")


def _another_agent(lock: Any, busy: LockedError) -> LockedError:
    """Exit 4: the agent already running on this directory, with its lock record."""
    from rollout_cli.store.locks import lock_info

    record = busy.record
    return LockedError(
        f"another agent drives the rollouts of {lock.path.parent}: "
        f"{record.get('operation')} (pid {record.get('pid')}, {record.get('who')}, since "
        f"{record.get('created')}). One agent runs per state directory; stop that one "
        f"first, or use it.\n\n{lock_info(record)}", record)


def serve(store: Any, name: str, listen: Listen, token: str | None, env: dict[str, str],
          log: Callable[[str], None] = log_line,
          ready: Callable[[str], None] | None = None) -> int:
    """Run the agent until SIGTERM or SIGINT; exit code 0."""
    from waitress import create_server

    from rollout_cli.agent.alerts import AlertRouter
    from rollout_cli.agent.http import AgentApp
    from rollout_cli.agent.metrics import RolloutCollector
    from rollout_cli.agent.overview import overview
    from rollout_cli.agent.supervisor import Supervisor

    with ExitStack() as held:
        lock = agent_lock(store, name)
        if lock is not None:
            try:
                held.enter_context(lock)
            except LockedError as busy:
                raise _another_agent(lock, busy) from None
        supervisor = Supervisor(store, name, env, log)
        described = supervisor.driver.describe()

        def views() -> Any:
            return overview(supervisor.context())

        router = AlertRouter(supervisor.context, log)
        app = AgentApp(router, views,
                       RolloutCollector(views, described, supervisor.leases), described, token)
        try:
            server = create_server(app, host=listen.host, port=listen.port, threads=8,
                                   ident="rollout-agent")
        except OSError as exc:
            raise UsageError(f"--listen {listen.host}:{listen.port}: {exc.strerror or exc}"
                             ) from None
        url = f"http://{listen.host}:{server.effective_port}"
        web = threading.Thread(target=server.run, daemon=True, name="http")
        web.start()
        previous: dict[int, Any] = {}

        def stopping(signum: int, frame: Any) -> None:
            # The first signal stops the agent cleanly; a second one acts as it would have.
            supervisor.stop.set()
            log(f"agent {name}: {signal.Signals(signum).name}, stopping: each driver "
                "finishes its call in flight and releases its lease")
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        previous = {sig: signal.signal(sig, stopping) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            log(f"agent {name} ({described}) listening on {url}; "
                f"driving the active rollouts of {getattr(store, 'root', 'the store')}")
            if ready is not None:
                ready(url)
            drivers = threading.Thread(target=supervisor.run, name="supervisor")
            drivers.start()
            while drivers.is_alive():
                drivers.join(timeout=0.5)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            server.close()
        for action in router.actions:
            action.join(timeout=30.0)
        log(f"agent {name} stopped; its leases are released")
    return 0

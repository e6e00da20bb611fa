"""The sandbox: a simulated brain API (the seed guide's endpoints) for demos, tests, rehearsals.

Public API::

    app = create_sandbox("healthy", seed=1, clock=VirtualClock())   # a WSGI app
    with sandbox_client(app) as client: ...                          # in process, no sockets
    with running_sandbox(app) as running: running.url                # real HTTP on loopback

See docs/sandbox.md for endpoints, scenarios and metric names.
"""

from typing import TYPE_CHECKING, Any

from rollout_cli.clock import Clock, ScaledClock, VirtualClock
from rollout_cli.sandbox.app import CallRecord, SandboxApp, create_sandbox
from rollout_cli.sandbox.model import MODERN_FLAG, BrainModel
from rollout_cli.sandbox.scenarios import PRESETS, Scenario, load_scenario, preset_names
from rollout_cli.sandbox.transport import SandboxTransport, sandbox_client

if TYPE_CHECKING:
    from rollout_cli.sandbox.server import RunningSandbox, SandboxServer, running_sandbox

# The HTTP server (wsgiref, socketserver) is imported when first asked for: a simulation
# runs the sandbox in process and never needs it.
_SERVER_NAMES = ("RunningSandbox", "SandboxServer", "running_sandbox")


def __getattr__(name: str) -> Any:
    if name in _SERVER_NAMES:
        from rollout_cli.sandbox import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_SERVER_NAMES})

__all__ = [
    "MODERN_FLAG",
    "PRESETS",
    "BrainModel",
    "CallRecord",
    "Clock",
    "RunningSandbox",
    "SandboxApp",
    "SandboxServer",
    "SandboxTransport",
    "ScaledClock",
    "Scenario",
    "VirtualClock",
    "create_sandbox",
    "load_scenario",
    "preset_names",
    "running_sandbox",
    "sandbox_client",
]

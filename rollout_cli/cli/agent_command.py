"""`rollout agent`: drive every active rollout of a store, act on pushed alerts, serve a
status page and metrics (the logic is in rollout_cli/agent/)."""

from __future__ import annotations

import os
import socket

import typer

from rollout_cli.agent.service import DEFAULT_LISTEN
from rollout_cli.cli.options import STATE, STATE_DIR, state_store


def agent(
    cli: typer.Context,
    listen: str = typer.Option(DEFAULT_LISTEN, "--listen", metavar="HOST:PORT",
                               help="Where to serve /alertmanager, /metrics, / and /healthz "
                                    "(port 0: any free port, printed)."),
    token_env: str | None = typer.Option(
        None, "--token-env", metavar="NAME",
        help="Require `Authorization: Bearer $NAME` on POST /alertmanager."),
    name: str | None = typer.Option(None, "--name", help="This agent's name [default: the "
                                                         "host name]."),
    state: str | None = STATE,
    state_dir: str | None = STATE_DIR,
) -> None:
    """Drive every active rollout in the store until stopped (SIGTERM, Ctrl-C: exit 0).

    Measures during bakes, judges, rolls back, opens auto gates, waits at manual gates and
    pauses for a person; acts on Alertmanager's webhook by the plans' `alerts:`. On a
    state directory a second agent exits 4 naming the first.
    """
    from rollout_cli.agent.service import Listen, serve
    from rollout_cli.errors import UsageError

    where = Listen.parse(listen)
    token = None
    if token_env:
        token = os.environ.get(token_env)
        if not token:
            raise UsageError(f"--token-env {token_env}: the variable is not set or empty")
    # Plans read ${VAR}s from the environment; the webhook's token is not theirs to read.
    env = {key: value for key, value in os.environ.items() if key != token_env}
    raise typer.Exit(serve(state_store(cli), name or socket.gethostname(), where, token, env))

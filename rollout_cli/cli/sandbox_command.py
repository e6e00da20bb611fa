"""`rollout sandbox`: serve the simulated brain API on loopback for demos and rehearsals."""

from __future__ import annotations

import typer


def sandbox(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="Port (0: any free port)."),
    scenario: str = typer.Option(
        "healthy", "--scenario", metavar="NAME|FILE", help="A named scenario or a YAML file."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed replays the same run."),
    time_scale: float = typer.Option(
        1.0, "--time-scale", min=0.001, help="Simulated seconds per real second."
    ),
    token: str | None = typer.Option(
        None, "--token", envvar="ROLLOUT_SANDBOX_TOKEN", show_envvar=True,
        help="Require 'Authorization: Bearer TOKEN' on /api/admin/* calls.",
    ),
    max_real_delay: float = typer.Option(
        3.0, "--max-real-delay", min=0.0,
        help="Cap in real seconds on a simulated slow answer or timeout.",
    ),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request to stderr."),
) -> None:
    """Serve a simulated brain API (the seed guide's endpoints) over HTTP.

    The sandbox simulates user traffic split between the legacy and modern implementations
    by the live rollout percentage, and answers the guide's admin API: A/B testing, feature
    flags, dashboard metrics and alerts, memory stats, error analysis. Point a rollout plan's
    target at the printed URL to rehearse a rollout.

    Scenarios: healthy, degrade-at-50, error-spike, memory-leak, flaky-admin, slow-metrics,
    no-traffic, or a YAML scenario file (see docs/sandbox.md).

    Time runs --time-scale times faster than real time: with 120, one real minute is two
    simulated hours, so metric windows like window=5m are simulated minutes.

    Also served: GET /metrics (Prometheus), GET /api/admin/_sandbox/calls (every admin call
    received) and GET /api/admin/_sandbox/state (the model's state). Ctrl-C stops it.
    """
    import signal

    from rollout_cli.errors import UsageError
    from rollout_cli.render.console import stdout
    from rollout_cli.sandbox import SandboxServer, create_sandbox

    app = create_sandbox(
        scenario, seed=seed, time_scale=time_scale, token=token, max_real_delay=max_real_delay
    )
    try:
        server = SandboxServer(app, host, port, access_log=access_log)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    console = stdout()
    auth = "bearer token required on /api/admin/*" if token else "no auth"
    console.print(
        f"rollout sandbox: scenario {app.model.scenario.name}, seed {seed}, "
        f"time scale {time_scale:g}x, {auth}",
        markup=False,
    )
    console.print(f"listening on {server.url} (Ctrl-C to stop)", markup=False)
    # Ctrl-C must stop it even when started from a shell that ignores SIGINT (`cmd &`),
    # and `kill` as cleanly as Ctrl-C.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("sandbox stopped", markup=False)
    finally:
        server.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt

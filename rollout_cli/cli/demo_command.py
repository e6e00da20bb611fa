"""`rollout demo`: the whole product in under a minute, against the bundled sandbox."""

from __future__ import annotations

import typer

from rollout_cli.cli.options import OUTPUT, STATE_DIR, Output, state_flags, state_store


def demo(
    cli: typer.Context,
    scenario: str = typer.Option("healthy", "--scenario", "-s",
                                 help="healthy, degrade-at-50, memory-leak, error-spike, "
                                      "no-traffic, flaky-admin, slow-metrics, or a file."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the simulated traffic."),
    speed: float = typer.Option(1.0, "--speed",
                                help="Run the demo this many times faster (2 halves it)."),
    state: str | None = typer.Option(None, "--state", metavar="LOCATION",
                                     help="Where rollout state lives [default: $ROLLOUT_STATE, "
                                          "else ./.rollout]."),
    state_dir: str | None = STATE_DIR,
    output: Output = OUTPUT,
) -> None:
    """Start the sandbox on a free loopback port and run plans/brain-api-demo.yaml against
    it over real HTTP (600x time), then summarise the outcome and every decision.

    `rollout demo` succeeds in about half a minute; `--scenario degrade-at-50` shows the
    automatic rollback at 50% with its reason.
    """
    from rollout_cli.demo import run_demo
    from rollout_cli.render.console import stdout
    from rollout_cli.render.demo_view import print_demo
    from rollout_cli.render.rollout_view import EventPrinter
    from rollout_cli.store.location import choose

    # The normal state location, so that `rollout report` and `history` find the demo.
    found = choose(state_flags(cli))
    store = state_store(cli)

    if output is Output.text and stdout().is_terminal:
        from rollout_cli.demo import DEMO_PLAN
        from rollout_cli.plan import load_plan
        from rollout_cli.render.live_view import LiveView

        view = LiveView(load_plan(DEMO_PLAN, {}).plan, stdout())
        result = view.run(lambda: run_demo(store, scenario, seed, on_event=view, speed=speed))
    else:
        printer = EventPrinter(quiet=output is Output.json, jsonl=output is Output.jsonl)
        result = run_demo(store, scenario, seed, on_event=printer, speed=speed)
    # The commands the summary ends with name the location only when a flag gave it.
    print_demo(result, output.value,
               state=found[0] if found and found[1].startswith("--") else None)
    raise typer.Exit(result.exit_code)


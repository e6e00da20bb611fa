"""`rollout simulate`: rehearse a plan against the sandbox's model on a virtual clock."""

from __future__ import annotations

from pathlib import Path

import typer

from rollout_cli.cli.options import OUTPUT, Output


def simulate(
    plan: Path = typer.Argument(..., metavar="PLAN", help="The plan file.", show_default=False),
    scenario: str = typer.Option("healthy", "--scenario", "-s",
                                 help="A sandbox scenario name, or a scenario YAML file."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the simulated traffic."),
    output: Output = OUTPUT,
) -> None:
    """Run the whole plan in process against the sandbox's model, on a virtual clock.

    No sleeping, no sockets, no local commands: a 48-hour plan takes seconds. Prints the
    decision trace (time, stage, verdicts, action) and the outcome; exits like a real run
    (0 succeeded, 1 rolled back, 3 paused).
    """
    from rollout_cli.render.simulation_view import print_simulation
    from rollout_cli.simulation import simulate as run_simulation

    result = run_simulation(plan, scenario, seed)
    print_simulation(result, output.value)
    raise typer.Exit(result.exit_code)


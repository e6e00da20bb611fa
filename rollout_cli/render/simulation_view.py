"""The decision trace of `rollout simulate`."""

from __future__ import annotations

import json

from rollout_cli.plan.durations import format_duration
from rollout_cli.render.console import stdout
from rollout_cli.simulation import Simulation


def print_simulation(result: Simulation, output: str) -> None:
    if output != "text":
        print(json.dumps(result.to_dict()))
        return
    console = stdout()
    console.print(f"Simulating {result.plan} under scenario {result.scenario!r} "
                  f"(seed {result.seed})", markup=False)
    for entry in result.trace:
        pct = entry.get("percentage")
        where = f"{entry.get('stage')!s:<16} {'-' if pct is None else f'{pct:g}%':>5}"
        console.print(f"{entry['at_text']:>10}  {where}  {entry['action']}", markup=False)
        for reason in entry.get("reasons", ()):
            console.print(f"{'':>36}{reason}", markup=False)
        if entry.get("reason") and entry["action"] != "stage-started":
            console.print(f"{'':>36}{entry['reason']}", markup=False)
    top = "-" if result.max_percentage is None else f"{result.max_percentage:g}%"
    console.print(f"\nOutcome: {result.phase} after {format_duration(result.simulated)} "
                  f"simulated; highest traffic {top}; {result.rounds} analysis rounds, "
                  f"{result.evaluations} check evaluations", markup=False)
    if result.reason:
        console.print(f"Reason: {result.reason}", markup=False)

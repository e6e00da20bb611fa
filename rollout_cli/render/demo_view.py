"""The summary that ends `rollout demo`."""

from __future__ import annotations

import json
import shlex

from rollout_cli.demo import DemoResult
from rollout_cli.render.console import stdout


def print_demo(result: DemoResult, output: str, state: str | None = None) -> None:
    """``state`` is the location a flag named, repeated in the commands the summary ends
    with (a location from the environment or the default needs no flag)."""
    if output in ("json", "jsonl"):
        print(json.dumps({**({"type": "summary"} if output == "jsonl" else {}),
            "rollout": result.rollout_id, "scenario": result.scenario, "phase": result.phase,
            "reason": result.reason, "seconds": round(result.seconds, 2),
            "stages": [{"stage": name, "percentage": pct, "completed_after": round(at, 2)}
                       for name, pct, at in result.log.stages],
            "decisions": result.log.decisions, "exit_code": result.exit_code}))
        return
    console = stdout()
    console.print(f"\nDemo summary: scenario {result.scenario!r} against the sandbox at "
                  f"{result.url}", markup=False)
    console.print(f"  outcome   {result.phase} in {result.seconds:.1f} s", markup=False)
    if result.reason:
        console.print(f"  because   {result.reason}", markup=False)
    console.print("  stages    " + (" -> ".join(
        f"{name}{f' ({pct:g}%)' if pct is not None else ''}"
        for name, pct, _ in result.log.stages) or "none completed"), markup=False)
    for decision in result.log.decisions:
        console.print(f"  decision  {decision}", markup=False)
    if result.scenario == "healthy":
        console.print("\nNext: `rollout demo --scenario degrade-at-50` shows an automatic "
                      "rollback.", markup=False)
    where = f" --state {shlex.quote(state)}" if state else ""
    console.print("\nSee it again:", markup=False)
    console.print(f"  rollout report {result.rollout_id}{where} --output html --out report.html",
                  markup=False)
    console.print(f"  rollout history {result.rollout_id}{where}", markup=False)

"""Simulation throughput: `rollout simulate plans/brain-api.yaml` (the guide's plan, every
analysis interval of its 36h30m..46h30m) as a user runs it, wall time end to end (start-up
included), median of RUNS; and check evaluations per second. Target: under 3 s (issue 14:
readable code over the last bit of speed; it was 2 s). Wall time on a shared machine is
noisy: compare medians, or instructions (callgrind) for a before/after.

    python bench/simulate.py [RUNS]     # default 5
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "plans" / "brain-api.yaml"
TARGET_SECONDS = 3.0


def rollout_command() -> list[str]:
    """The console script next to this interpreter, as a user runs it."""
    script = Path(sys.executable).parent / "rollout"
    if script.exists():
        return [str(script)]
    found = shutil.which("rollout")
    return [found] if found else [sys.executable, "-m", "rollout_cli"]


def one_run() -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run([*rollout_command(), "simulate", str(PLAN), "--output", "json"],
                          capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"rollout simulate exited {done.returncode}: {done.stderr.strip()}")
    return elapsed, json.loads(done.stdout)


def main(runs: int) -> int:
    times, result = [], {}
    for _ in range(runs):
        elapsed, result = one_run()
        times.append(elapsed)
    median = statistics.median(times)
    evaluations = result["evaluations"]
    ok = median < TARGET_SECONDS
    print(f"simulate plans/brain-api.yaml: {result['phase']} after "
          f"{result['simulated'] / 3600:.1f} simulated hours, {result['rounds']} analysis "
          f"rounds, {evaluations} check evaluations")
    print(f"simulate: median {median:.2f} s wall of {runs} (min {min(times):.2f}, max "
          f"{max(times):.2f}), {evaluations / median:.0f} evaluations/s "
          f"(target < {TARGET_SECONDS:g} s) {'PASS' if ok else 'MISS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5))

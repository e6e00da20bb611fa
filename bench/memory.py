"""Memory over a long rollout: a simulated 7-day bake analysed every 10 s (60k rounds)
must peak within 10 MB of RSS of a 1-hour one. Each length runs in a fresh process, so
one's peak can't hide the other's.

    python bench/memory.py            # 1h against 7d
    python bench/memory.py --days 1   # a shorter long run, for a quick look
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

PLAN = Path(__file__).resolve().parent / "plans" / "long-bake.yaml"
LIMIT_MB = 10.0


def one(bake: str) -> dict[str, float]:
    """Simulate the plan with ``bake`` in this process; its figures, peak RSS included."""
    from rollout_cli.simulation import simulate

    started = time.perf_counter()
    result = simulate(PLAN, "healthy", env={"BAKE": bake})
    return {
        "bake": bake,
        "phase": result.phase,
        "rounds": result.rounds,
        "simulated_hours": result.simulated / 3600,
        "seconds": time.perf_counter() - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(bake: str) -> dict[str, float]:
    found = subprocess.run([sys.executable, __file__, "--one", bake], check=True,
                           capture_output=True, text=True)
    return json.loads(found.stdout)


def main(days: float) -> int:
    short = measure("1h")
    long = measure(f"{days * 24:g}h")
    growth = long["peak_rss_mb"] - short["peak_rss_mb"]
    for run in (short, long):
        print(f"bake {run['bake']:>5}: {run['rounds']:>6} analysis rounds, {run['phase']}, "
              f"peak RSS {run['peak_rss_mb']:.1f} MB, {run['seconds']:.1f} s "
              f"({run['rounds'] / run['seconds']:.0f} rounds/s)")
    ok = growth <= LIMIT_MB and long["phase"] == short["phase"] == "succeeded"
    print(f"memory: peak RSS grows {growth:+.1f} MB from 1h to {days:g}d "
          f"(target <= {LIMIT_MB:g} MB) {'PASS' if ok else 'MISS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        sys.exit(0)
    sys.exit(main(args.days))

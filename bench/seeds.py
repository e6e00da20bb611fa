"""Noise robustness of plans/brain-api.yaml: N seeded simulations of `healthy` (none may
roll back) and of `degrade-at-50` (none may promote past 50%). Prints both counts.

    python bench/seeds.py [N]        # default 200
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

from rollout_cli.simulation import simulate

PLAN = Path(__file__).resolve().parent.parent / "plans" / "brain-api.yaml"


def main(runs: int) -> int:
    started = time.perf_counter()
    healthy = Counter()
    rolled_back_healthy = 0
    for seed in range(runs):
        result = simulate(PLAN, "healthy", seed=seed, env={})
        healthy[result.phase] += 1
        rolled_back_healthy += result.phase in ("rolled-back", "rollback-failed")
    degrade = Counter()
    promoted_past_50 = 0
    for seed in range(runs):
        result = simulate(PLAN, "degrade-at-50", seed=seed, env={})
        degrade[result.phase] += 1
        promoted_past_50 += (result.max_percentage or 0) > 50
    elapsed = time.perf_counter() - started
    print(f"healthy       x{runs}: rollbacks {rolled_back_healthy} (target 0); "
          f"outcomes {dict(healthy)}")
    print(f"degrade-at-50 x{runs}: promotions past 50% {promoted_past_50} (target 0); "
          f"outcomes {dict(degrade)}")
    print(f"{2 * runs} simulations in {elapsed:.1f} s ({elapsed / (2 * runs):.2f} s each)")
    return 1 if rolled_back_healthy or promoted_past_50 else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))

"""Decisions (issue 18): how often the brain plan's checks roll back a canary that is not
worse, and how often and how fast they catch one that is, over N seeded simulations.

Two plans, the same stages, bakes and absolute checks (the guide's success and error
rates, critical alerts):

- **thresholds**: bench/plans/brain-api-thresholds.yaml, the plan as it was before
  compare checks: the mean p95 over 10 minutes vs legacy's, inconclusive between +0% and
  +20%, failed beyond +20%.
- **compare**: plans/brain-api.yaml: latency vs legacy by Mann-Whitney (Hodges-Lehmann
  shift, 98%, allowed +5%) and errors vs legacy by an anytime-valid sequence (99%, allowed
  +1 point).

Three sandbox scenarios: `noisy-healthy` (no real difference, low traffic, jittery
latency), `subtle-degrade` (from 25%, modern 8% slower than legacy and 1 point more
errors) and `degrade-at-50` (from 50%, 40% slower and 6 points fewer successes).

Printed per plan: false rollbacks on noisy-healthy; on each degrading scenario the runs
rolled back before 100% (caught) and the median simulated time from the fault (the
traffic change to its percentage) to the rollback; and how the other runs ended (paused
runs wait for a person: not a rollback, not a catch). Targets for compare: at most 1%
false rollbacks, at least 95% of subtle-degrade caught, and on degrade-at-50 no fewer
caught and no slower (median) than thresholds. Exits 1 on a miss.

    python bench/decisions.py [N]      # N seeds per scenario and plan, default 200
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLANS = {"thresholds": ROOT / "bench" / "plans" / "brain-api-thresholds.yaml",
         "compare": ROOT / "plans" / "brain-api.yaml"}
# The scenario, and the modern share from which it degrades (None: it never does).
SCENARIOS = {"noisy-healthy": None, "subtle-degrade": 25.0, "degrade-at-50": 50.0}
# A paused run waits for a person forever; nothing is decided after 3 simulated days.
MAX_TIME = 72 * 3600.0

MAX_FALSE_ROLLBACKS = 0.01
MIN_SUBTLE_CAUGHT = 0.95


def one(job: tuple[str, str, int]) -> tuple[str, str, int, str, float | None, bool]:
    """One simulation: (plan, scenario, seed, how it ended, seconds from the fault to the
    rollback or None, whether it was rolled back before 100%)."""
    from rollout_cli.engine import events as ev
    from rollout_cli.simulation import simulate

    plan, scenario, seed = job
    threshold = SCENARIOS[scenario]
    seen: dict[str, float] = {}

    def watch(event: object, state: object) -> None:
        share = getattr(state, "percentage", None)
        if threshold is not None and share is not None and share >= threshold:
            seen.setdefault("fault", event.time)  # type: ignore[attr-defined]
        if isinstance(event, ev.RollbackStarted):
            seen.setdefault("rollback", event.time)

    result = simulate(PLANS[plan], scenario, seed=seed, env={}, max_time=MAX_TIME,
                      on_event=watch)
    rolled_back = "rollback" in seen
    caught = rolled_back and (result.max_percentage or 0.0) < 100.0
    delay = seen["rollback"] - seen["fault"] if rolled_back and "fault" in seen else None
    return plan, scenario, seed, result.phase, delay, caught


def main(runs: int) -> int:
    jobs = [(plan, scenario, seed) for plan in PLANS for scenario in SCENARIOS
            for seed in range(runs)]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = list(pool.map(one, jobs, chunksize=4))
    wall = time.perf_counter() - started

    table: dict[tuple[str, str], dict[str, object]] = {}
    for plan in PLANS:
        for scenario in SCENARIOS:
            mine = [r for r in results if r[0] == plan and r[1] == scenario]
            delays = [r[4] for r in mine if r[4] is not None and r[5]]
            table[plan, scenario] = {
                "rolled_back": sum(r[3] == "rolled-back" for r in mine),
                "caught": sum(r[5] for r in mine),
                "median": statistics.median(delays) if delays else None,
                "ended": Counter(r[3] for r in mine),
            }

    print(f"decisions: {runs} seeded simulations per plan and scenario, {wall:.0f} s wall")
    print(f"{'plan':<11} {'noisy-healthy':>22} {'subtle-degrade':>30} {'degrade-at-50':>30}")
    print(f"{'':<11} {'false rollbacks':>22} {'caught / median to rollback':>30} "
          f"{'caught / median to rollback':>30}")
    for plan in PLANS:
        noisy = table[plan, "noisy-healthy"]
        cells = [f"{noisy['rolled_back']}/{runs} ({noisy['rolled_back'] / runs:.1%})"]
        for scenario in ("subtle-degrade", "degrade-at-50"):
            row = table[plan, scenario]
            median = row["median"]
            cells.append(f"{row['caught']}/{runs} ({row['caught'] / runs:.0%}) / "  # type: ignore[operator]
                         f"{_hours(median)}")  # type: ignore[arg-type]
        print(f"{plan:<11} {cells[0]:>22} {cells[1]:>30} {cells[2]:>30}")
    for plan in PLANS:
        for scenario in SCENARIOS:
            ended = table[plan, scenario]["ended"]
            print(f"  {plan} on {scenario}: ended " + ", ".join(
                f"{phase} {count}" for phase, count in sorted(ended.items())))  # type: ignore[attr-defined]

    compare, today = table["compare", "noisy-healthy"], None
    misses = []
    false_rate = compare["rolled_back"] / runs  # type: ignore[operator]
    if false_rate > MAX_FALSE_ROLLBACKS:
        misses.append(f"false rollbacks {false_rate:.1%} > {MAX_FALSE_ROLLBACKS:.0%}")
    subtle = table["compare", "subtle-degrade"]["caught"] / runs  # type: ignore[operator]
    if subtle < MIN_SUBTLE_CAUGHT:
        misses.append(f"subtle-degrade caught {subtle:.0%} < {MIN_SUBTLE_CAUGHT:.0%}")
    today = table["thresholds", "degrade-at-50"]
    mine = table["compare", "degrade-at-50"]
    if mine["caught"] < today["caught"]:  # type: ignore[operator]
        misses.append(f"degrade-at-50 caught {mine['caught']} < thresholds' {today['caught']}")
    if mine["median"] is None or (today["median"] is not None
                                  and mine["median"] > today["median"]):  # type: ignore[operator]
        misses.append(f"degrade-at-50 median {_hours(mine['median'])} slower than "  # type: ignore[arg-type]
                      f"thresholds' {_hours(today['median'])}")  # type: ignore[arg-type]
    print(f"targets (compare): false rollbacks <= {MAX_FALSE_ROLLBACKS:.0%}, subtle-degrade "
          f"caught >= {MIN_SUBTLE_CAUGHT:.0%}, degrade-at-50 no fewer caught and no slower "
          f"than thresholds: " + ("PASS" if not misses else "MISS: " + "; ".join(misses)))
    return 0 if not misses else 1


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 60:.0f}m" if seconds < 3600 else f"{seconds / 3600:.1f}h"


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))

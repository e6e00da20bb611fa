"""`rollout agent` watching 100 rollouts at a 10 s analysis interval (issue 16): its CPU
share, its memory, and how late its analysis rounds are.

100 plans (fleet-000 ... fleet-099, one rollout each, all active at once) bake for a day
at 10% with two checks measured every 10 s against one sandbox on loopback. `rollout
start` starts each (it stops at the bake); then one agent on the state directory drives
all of them. Once it holds every lease and a warm-up has passed, the bench samples the
agent's process for a measured period of real time:

- CPU share: the process's user + system CPU seconds (/proc/PID/stat) over wall seconds,
  in % of one core. Target: under 25%.
- RSS (/proc/PID/status VmRSS) at the start and the end of the period, and its growth
  extrapolated to a day: the least-squares slope of samples every 5 s over the second
  half of the period. Target: under 50 MB/day. A real day is not simulated: the agent
  runs on the wall clock, so this is an extrapolation, and one that needs time: each
  rollout's memory grows over its first hundred-odd rounds (sample windows and histories
  filling, the allocator's per-thread caches warming), which at a 10 s interval is the
  first 15-20 minutes. A period shorter than 20 minutes prints the slope without judging
  it (`bench/run --quick`); `bench/run agent-fleet` measures 30.
- Lateness: the gap between two analysis rounds of one rollout (the journal's `analysis`
  events) minus the 10 s interval; median and max over every rollout. Target: max under
  2 s (no round skipped or piled up).

    python bench/agent_fleet.py [--rollouts 100] [--seconds 120] [--warmup 20]
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rollout_cli.sandbox import create_sandbox, running_sandbox
from rollout_cli.store import open_store

INTERVAL = 10.0
TARGET_CPU = 25.0          # % of one core
TARGET_RSS_DAY = 50.0      # MB of growth per day
TARGET_LATE = 2.0          # s past the interval, at most
JUDGE_RSS_AFTER = 1200.0   # s of measuring before the RSS slope means anything

PLAN = """\
version: 1
name: {name}
target:
  base_url: ${{BRAIN_API_URL}}
  timeout: 5s
traffic:                      # the bench measures the agent, not the target's A/B state
  request: POST /api/admin/memory/cleanup
  idempotent: true
metrics:
  critical_alerts:
    http: {{get: /api/admin/dashboard/alerts}}
    select: "length(alerts[?severity == 'critical'])"
  modern_heap_mb:
    http: {{get: /api/admin/memory/stats}}
    select: heapMb.modern
    unit: MB
checks:
  critical-alerts: {{metric: critical_alerts, pass: "== 0", fail: "> 0"}}
  heap: {{metric: modern_heap_mb, pass: ">= 0"}}
analysis:
  interval: 10s
  checks: [critical-alerts, heap]
  failure_limit: 0
  on_failure: rollback
stages:
  - {{name: canary, percentage: 10, bake: 1d}}
  - {{name: full, percentage: 100}}
rollback:
  - request: POST /api/admin/feature-flags/disable
    json: {{flag: USE_MODERN_BRAIN_API, value: false}}
    idempotent: true
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (all its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    found = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    assert found is not None
    return int(found.group(1)) / 1024


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points."""
    xs, ys = [x for x, _ in points], [y for _, y in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return (sum((x - mx) * (y - my) for x, y in points)
            / sum((x - mx) ** 2 for x in xs))


def start_all(count: int, work: Path, state: Path, env: dict[str, str]) -> list[str]:
    def start(n: int) -> None:
        plan = work / f"fleet-{n:03d}.yaml"
        plan.write_text(PLAN.format(name=f"fleet-{n:03d}"))
        done = subprocess.run([sys.executable, "-m", "rollout_cli", "start", str(plan),
                               "--state", str(state)], env=env, capture_output=True,
                              text=True)
        if done.returncode != 3:
            raise SystemExit(f"bench: start fleet-{n:03d} exited {done.returncode}: "
                             f"{done.stderr[-1000:]}")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(start, range(count)))
    return [meta.id for meta in open_store(state).find_active()]


def main(argv: list[str]) -> int:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--rollouts", type=int, default=100)
    options.add_argument("--seconds", type=float, default=120.0)
    options.add_argument("--warmup", type=float, default=20.0)
    args = options.parse_args(argv)
    app = create_sandbox("healthy", seed=1, time_scale=1.0)
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp, running_sandbox(app) as sb:
        work, state = Path(tmp), Path(tmp) / "state"
        env = {**os.environ, "BRAIN_API_URL": sb.url, "NO_COLOR": "1"}
        env.pop("ROLLOUT_STATE", None)
        began = time.monotonic()
        ids = start_all(args.rollouts, work, state, env)
        assert len(ids) == args.rollouts, f"{len(ids)} active of {args.rollouts}"
        print(f"{args.rollouts} rollouts started in {time.monotonic() - began:.0f} s",
              flush=True)
        log = (work / "agent.log").open("w")
        agent = subprocess.Popen([sys.executable, "-m", "rollout_cli", "agent", "--listen",
                                  "127.0.0.1:0", "--name", "fleet", "--state", str(state)],
                                 env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            return measure(agent.pid, state, ids, args)
        finally:
            agent.send_signal(signal.SIGTERM)
            try:
                agent.wait(timeout=60)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()
            log.close()


def measure(pid: int, state: Path, ids: list[str], args: argparse.Namespace) -> int:
    store = open_store(state)
    deadline = time.monotonic() + 60
    while not all((lease := store.open(i).lease()) is not None and lease.driver.pid == pid
                  for i in ids):
        if time.monotonic() > deadline:
            raise SystemExit("bench: the agent did not take every rollout within 60 s")
        time.sleep(0.5)
    time.sleep(args.warmup)
    wall0, cpu0, rss0 = time.monotonic(), cpu_seconds(pid), rss_mb(pid)
    since = time.time()
    samples = [(0.0, rss0)]
    while (elapsed := time.monotonic() - wall0) < args.seconds:
        time.sleep(min(5.0, args.seconds - elapsed))
        samples.append((time.monotonic() - wall0, rss_mb(pid)))
    wall, cpu = time.monotonic() - wall0, cpu_seconds(pid) - cpu0
    rss1 = samples[-1][1]
    per_day = slope([s for s in samples if s[0] >= wall / 2]) * 86400
    trace = ", ".join(f"{mb:.1f}" for _, mb in samples[::6])

    late, rounds = [], 0
    for rollout_id in ids:
        times = [e["time"] for e in store.open(rollout_id).journal.events()
                 if e["type"] == "analysis" and e["time"] >= since]
        rounds += len(times)
        late += [b - a - INTERVAL for a, b in itertools.pairwise(times)]
    active = sum(1 for _ in store.find_active())
    share = cpu / wall * 100
    print(f"one agent, {len(ids)} rollouts at a {INTERVAL:g} s interval, {wall:.0f} s "
          f"measured after {args.warmup:g} s warm-up ({active} still active)")
    print(f"CPU share: {share:.1f}% of one core (target < {TARGET_CPU:g}%)")
    print(f"RSS: {rss0:.1f} MB at the start, {rss1:.1f} MB at the end (every 30 s: {trace}); "
          f"growth over the second half extrapolated to a day: {per_day:+.0f} MB/day "
          f"(target < {TARGET_RSS_DAY:g})")
    if not late:
        print("rounds: none measured (period shorter than the interval)")
        return 1
    print(f"rounds: {rounds} analysis rounds; late past the {INTERVAL:g} s "
          f"interval: median {statistics.median(late):.2f} s, max {max(late):.2f} s "
          f"(target max < {TARGET_LATE:g} s)")
    judged = wall >= JUDGE_RSS_AFTER
    if not judged:
        print(f"RSS growth not judged: {wall:.0f} s is too short for the memory to settle "
              f"(--seconds {JUDGE_RSS_AFTER:.0f} or more)")
    ok = (share < TARGET_CPU and (per_day < TARGET_RSS_DAY or not judged)
          and max(late) < TARGET_LATE and active == len(ids))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

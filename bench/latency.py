"""Decision latency against the sandbox over real HTTP (issue 7).

1. Breach to rollback. A real `rollout run --auto-approve` process follows a plan whose
   canary stage is analysed every second (critical alerts and the A/B test's status, the
   brain plan's metrics and checks). Once the analysis runs steadily, the bench raises a
   critical alert on the target (POST /api/admin/alerts/emergency) at a chosen phase of
   the analysis interval, after the last measurement arrived there. The latency is from
   that breach becoming visible at the target to the first rollback request arriving
   there (POST feature-flags/disable), both read from the sandbox's call log on its own
   clock (time scale 1, so sandbox seconds are real seconds). One fresh sandbox and state
   dir per trial (an emergency alert stays listed for an hour); phases are stratified over
   the interval. Target: median <= interval + 100 ms.

2. Emergency rollback. `rollout rollback --plan plans/brain-api.yaml --yes`, the seed
   guide's emergency-rollback.sh (four POSTs) as a fresh process with no state, end to
   end: from spawning the command to its exit, against a running sandbox with a token.
   Target: median under 2 s (see TARGET_ROLLBACK).

    python bench/latency.py [TRIALS] [ROLLBACKS]     # default 15 and 7
"""

from __future__ import annotations

import itertools
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from rollout_cli.sandbox import CallRecord, create_sandbox, running_sandbox

ROOT = Path(__file__).resolve().parent.parent
BRAIN_PLAN = ROOT / "plans" / "brain-api.yaml"
INTERVAL = 1.0
TARGET_DECISION = INTERVAL + 0.1
# Four loopback POSTs take milliseconds; the rest is a Python process starting, loading
# the plan, journaling each call durably and exiting (~0.5-1 s on a shared 2-core VM).
# 2 s is a regression fence for that, far from a person's reaction time at 3 a.m. and
# from one retry backoff (which would show as a miss).
TARGET_ROLLBACK = 2.0
TOKEN = "bench-latency-token"
ALERTS = "/api/admin/dashboard/alerts"
EMERGENCY = "/api/admin/alerts/emergency"
DISABLE = "/api/admin/feature-flags/disable"
BREACH = "bench: injected breach"
EMERGENCY_SEQUENCE = [
    ("POST", DISABLE),
    ("POST", "/api/admin/ab-testing/emergency-stop"),
    ("POST", "/api/admin/memory/cleanup"),
    ("POST", EMERGENCY),
]

# The brain plan's target, traffic, metrics, checks and emergency rollback, with one
# canary stage analysed every INTERVAL.
PLAN = f"""\
version: 1
name: latency-bench
secrets: [BRAIN_API_TOKEN]
target:
  base_url: ${{BRAIN_API_URL}}
  headers:
    Authorization: "Bearer ${{BRAIN_API_TOKEN:-}}"
  timeout: 5s
  retry: {{attempts: 4, backoff: 200ms, max_backoff: 2s}}
traffic:
  request: POST /api/admin/ab-testing/update
  json: {{rolloutPercentage: "{{{{ percentage }}}}"}}
  idempotent: true
  expect: {{status: 200}}
metrics:
  critical_alerts:
    http: {{get: {ALERTS}}}
    select: "length(alerts[?severity == 'critical'])"
  ab_test_running:
    http: {{get: "/api/admin/ab-testing/results?window=5m"}}
    select: "length([@][?status == 'running'])"   # 1 or 0: a count, not true/false
checks:
  critical-alerts: {{metric: critical_alerts, pass: "== 0", fail: "> 0"}}
  ab-test-live: {{metric: ab_test_running, pass: "== 1", fail: "== 0"}}
analysis:
  interval: {INTERVAL:g}s
  checks: [critical-alerts, ab-test-live]
  failure_limit: 0
  on_failure: rollback
stages:
  - name: initialize
    steps:
      - request: POST /api/admin/dashboard/start
        idempotent: true
      - request: POST /api/admin/ab-testing/start
        json: {{testId: brain-api-modern-rollout, rolloutPercentage: 10, enabled: true}}
        idempotent: true
  - {{name: canary-10, percentage: 10, bake: 1h}}
rollback:
  - request: POST {DISABLE}
    json: {{flag: USE_MODERN_BRAIN_API, value: false}}
    idempotent: true
  - request: POST /api/admin/ab-testing/emergency-stop
    idempotent: true
  - request: POST /api/admin/memory/cleanup
    idempotent: true
  - request: POST {EMERGENCY}
    json: {{message: Brain API rolled back to legacy implementation}}
"""


def rollout_command() -> list[str]:
    """The `rollout` an operator types: the console script next to this Python."""
    script = Path(sys.executable).with_name("rollout")
    return [str(script)] if script.exists() else [sys.executable, "-m", "rollout_cli"]


def environment(url: str, work: Path) -> dict[str, str]:
    """The command's environment: the target, its token, and bytecode caching on.

    An installed `rollout` runs from compiled bytecode. With PYTHONDONTWRITEBYTECODE set
    (as in some dev shells) an editable install would compile every module from source
    on every start, ~0.4 s of CPU that no installed copy pays; the cache goes under
    ``work`` (PYTHONPYCACHEPREFIX), not into the checkout.
    """
    dropped = ("SLACK_WEBHOOK_URL", "ROLLOUT_STATE_DIR",
               "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    return {**env, "BRAIN_API_URL": url, "BRAIN_API_TOKEN": TOKEN, "NO_COLOR": "1",
            "PYTHONPYCACHEPREFIX": str(work / "pycache")}


class CallWatch:
    """The sandbox's call log, read in process as it grows; ``wait_for`` reads on from
    the record after the last one it returned."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[CallRecord] = []
        self.cursor = 0

    def poll(self) -> None:
        self.seen += self.app.calls.since(self.seen[-1].seq if self.seen else 0)

    def skip(self) -> None:
        self.poll()
        self.cursor = len(self.seen)

    def wait_for(self, wanted: Any, timeout: float, pause: float = 0.002) -> CallRecord:
        deadline = time.monotonic() + timeout
        while True:
            while self.cursor < len(self.seen):
                record = self.seen[self.cursor]
                self.cursor += 1
                if wanted(record):
                    return record
            if time.monotonic() > deadline:
                raise TimeoutError("the awaited call never arrived at the target")
            time.sleep(pause)
            self.poll()


def measurement(record: CallRecord) -> bool:
    return record.method == "GET" and record.path == ALERTS


def decision_trial(plan: Path, work: Path, seed: int, phase: float) -> dict[str, float]:
    app = create_sandbox("healthy", seed=seed, time_scale=1.0, token=TOKEN)
    with running_sandbox(app) as running, httpx.Client(
            base_url=running.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        state = work / f"state-{seed}"
        log = (work / f"run-{seed}.log").open("w")
        process = subprocess.Popen(
            [*rollout_command(), "run", str(plan), "--auto-approve", "--state-dir", str(state)],
            env=environment(running.url, work), stdout=log, stderr=subprocess.STDOUT)
        try:
            watch = CallWatch(app)
            watch.wait_for(lambda r: r.path.endswith("/ab-testing/update"), 30)
            for _ in range(3):                      # the analysis runs steadily
                watch.wait_for(measurement, 10)
            times = [r.time for r in watch.seen if measurement(r)]
            gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
            watch.skip()
            last = watch.wait_for(measurement, 10)  # a fresh one, to time the phase from
            delay = last.time + phase * INTERVAL - app.model.elapsed()
            if delay > 0:
                time.sleep(delay)
            client.post(EMERGENCY, json={"message": BREACH}).raise_for_status()
            breach = watch.wait_for(
                lambda r: r.path == EMERGENCY and r.body == {"message": BREACH}, 5)
            detected = watch.wait_for(measurement, 2 * INTERVAL + 5)
            rollback = watch.wait_for(lambda r: r.method == "POST" and r.path == DISABLE,
                                      2 * INTERVAL + 10)
            code = process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    if code != 1:
        output = (work / f"run-{seed}.log").read_text()[-2000:]
        raise RuntimeError(f"`rollout run` exited {code}, not 1 (rolled back):\n{output}")
    previous = max(r.time for r in watch.seen if measurement(r) and r.seq < breach.seq)
    return {"phase": breach.time - previous, "latency": rollback.time - breach.time,
            "detect": detected.time - breach.time, "act": rollback.time - detected.time,
            "period": statistics.median(gaps)}


def rollback_run(url: str, app: Any, work: Path, index: int) -> tuple[float, float, float]:
    """Seconds from spawning `rollout rollback --plan` to its exit, from its first call to
    its last at the target, and of CPU the command used."""
    watch = CallWatch(app)
    watch.skip()
    before = len(watch.seen)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        [*rollout_command(), "rollback", "--plan", str(BRAIN_PLAN), "--yes",
         "--state-dir", str(work / f"rollback-{index}")],
        env=environment(url, work), capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime
    watch.poll()
    calls = watch.seen[before:]
    sent = [(c.method, c.path) for c in calls]
    if result.returncode != 1 or sent != EMERGENCY_SEQUENCE or any(
            c.status != 200 for c in calls):
        raise RuntimeError(f"rollback exited {result.returncode}, sent {sent} "
                           f"({[c.status for c in calls]}):\n{result.stdout}{result.stderr}")
    return elapsed, calls[-1].time - calls[0].time, cpu


def main(trials: int = 15, rollbacks: int = 7) -> int:
    work = Path(tempfile.mkdtemp(prefix="rollout-latency-"))
    try:
        plan = work / "latency-bench.yaml"
        plan.write_text(PLAN)
        ok = decisions(plan, work, trials)
        ok = emergency(work, rollbacks) and ok
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


def decisions(plan: Path, work: Path, trials: int) -> bool:
    draw = random.Random()
    phases = [(n + draw.random()) / trials for n in range(trials)]
    draw.shuffle(phases)
    print(f"breach -> first rollback request, analysis every {INTERVAL:g} s, "
          f"{trials} trials (`rollout run` process, sandbox over HTTP, time scale 1)")
    results = []
    for n, phase in enumerate(phases):
        found = decision_trial(plan, work, seed=n, phase=phase)
        results.append(found)
        print(f"  trial {n + 1:2d}: breach {found['phase'] * 1000:4.0f} ms after a "
              f"measurement -> next measurement +{found['detect'] * 1000:4.0f} ms, rollback "
              f"request +{found['act'] * 1000:3.0f} ms later: {found['latency'] * 1000:5.0f} ms")
    latencies = sorted(r["latency"] for r in results)
    median = statistics.median(latencies)
    acts = statistics.median(r["act"] for r in results)
    period = statistics.median(r["period"] for r in results)
    ok = median <= TARGET_DECISION
    print(f"  measurement period (median) {period * 1000:.0f} ms; measured breach -> "
          f"rollback request (median) {acts * 1000:.0f} ms")
    print(f"decision latency: median {median * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} "
          f"ms, min {latencies[0] * 1000:.0f} ms (target median <= "
          f"{TARGET_DECISION * 1000:.0f} ms): {'PASS' if ok else 'MISS'}")
    return ok


def emergency(work: Path, runs: int) -> bool:
    app = create_sandbox("healthy", seed=0, time_scale=1.0, token=TOKEN)
    with running_sandbox(app) as running:
        print(f"`rollout rollback --plan {BRAIN_PLAN.relative_to(ROOT)} --yes`: the guide's "
              f"4 emergency calls, no state, {runs} runs")
        first, *_ = rollback_run(running.url, app, work, runs)  # writes the bytecode cache
        results = [rollback_run(running.url, app, work, n) for n in range(runs)]
    totals = sorted(total for total, _, _ in results)
    median = statistics.median(totals)
    ok = median < TARGET_ROLLBACK
    print(f"  first call -> fourth call at the target: median "
          f"{statistics.median(span for _, span, _ in results) * 1000:.0f} ms; CPU used by "
          f"the command: median {statistics.median(cpu for _, _, cpu in results) * 1000:.0f} ms")
    print(f"emergency rollback end to end: median {median * 1000:.0f} ms, max "
          f"{totals[-1] * 1000:.0f} ms, min {totals[0] * 1000:.0f} ms (target median < "
          f"{TARGET_ROLLBACK * 1000:.0f} ms; first run, compiling bytecode, "
          f"{first * 1000:.0f} ms): {'PASS' if ok else 'MISS'}")
    return ok


if __name__ == "__main__":
    sys.exit(main(*(int(a) for a in sys.argv[1:3])))

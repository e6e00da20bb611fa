"""`rollout agent` (issue 16): pushed alert to rollback, and takeover of a lost driver.

1. Alert to rollback. One agent drives rollouts of a one-stage plan against the sandbox
   on loopback; each trial starts a rollout (it waits at a manual gate, driven by the
   agent), posts an Alertmanager webhook payload naming it to the agent, and measures
   from just before the POST to the journal's intent of the first rollback call (written
   just before the request goes out). Target: median under 200 ms.

2. Takeover. The agent drives a rollout at a manual gate and a `rollout resume --follow`
   watches it. SIGKILL: the lease of a process gone from this host is free at once, so
   the follower drives again within its next nap (target: under the lease time plus one
   interval, 1 s). SIGSTOP (a hung host: the process exists, silent): only the lease's
   expiry frees it (lease time 3 s here, $ROLLOUT_LEASE_TTL; the default is 15 s);
   target: under the lease time plus one interval. Measured from the signal to the
   follower's lease in the store.

3. Prometheus rule to rollback (``--prometheus N``). A real Prometheus scrapes an error
   ratio from a loopback exporter every second and evaluates a rule on it every second;
   its alert goes through a real Alertmanager (group_wait and group_interval 1 s) to the
   agent. Each trial starts a rollout, sets the ratio above the rule's threshold (with a
   new `incident` label, so each alert has its own fingerprint), and measures from that
   instant to the journal's intent of the first rollback call. Target: under 5 s (a
   scrape, an evaluation, Alertmanager's group wait, each up to 1 s, then the agent).

    python bench/agent.py [TRIALS] [TAKEOVERS] [--prometheus N]   # default 15, 3, 0
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from rollout_cli.sandbox import create_sandbox, running_sandbox
from rollout_cli.store import open_store

TARGET_ALERT = 0.200
TARGET_RULE = 5.0
RULES = """\
groups:
  - name: brain-api
    rules:
      - alert: BrainApiErrors
        expr: max by (incident) (brain_api_error_ratio) > 0.05
        labels: {service: brain-api, severity: critical}
"""
TTL = 3.0
INTERVAL = 1.0

PLAN = """\
version: 1
name: agent-bench
target:
  base_url: ${BRAIN_API_URL}
  timeout: 5s
traffic:                      # the bench times the agent, not the target's A/B state
  request: POST /api/admin/memory/cleanup
  idempotent: true
stages:
  - {name: canary, percentage: 10, gate: manual}
  - {name: full, percentage: 100}
rollback:
  - request: POST /api/admin/feature-flags/disable
    json: {flag: USE_MODERN_BRAIN_API, value: false}
    idempotent: true
  - request: POST /api/admin/alerts/emergency
    json: {message: rolled back by the agent bench}
alerts:
  - match: {service: brain-api}
    action: rollback
"""


def rollout(*args: str, env: dict[str, str], stderr=subprocess.DEVNULL
            ) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "rollout_cli", *args], env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=stderr)


def started_agent(state: Path, env: dict[str, str], log: Path
                  ) -> tuple[subprocess.Popen[str], str]:
    """`rollout agent` on a free port, its log in ``log`` (a file: never a full pipe)."""
    with log.open("w") as out:
        agent = rollout("agent", "--listen", "127.0.0.1:0", "--name", "bench", "--state",
                        str(state), env=env, stderr=out)
    found = wait(lambda: re.search(r"listening on (http://\S+);", log.read_text()), 30,
                 "listening")
    return agent, found.group(1)


def wait(condition, within: float, what: str, every: float = 0.01):
    deadline = time.monotonic() + within
    while not (found := condition()):
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: not {what} within {within}s")
        time.sleep(every)
    return found


def start(plan: Path, state: Path, env: dict[str, str]) -> str:
    created = subprocess.run([sys.executable, "-m", "rollout_cli", "start", str(plan),
                              "--state", str(state), "--output", "json",
                              "--lock-timeout", "10s"], env=env,
                             capture_output=True, text=True)
    assert created.returncode == 3, created.stderr
    return str(json.loads(created.stdout)["rollout"])


def guarded(guard: Path) -> bool:
    """Whether another process holds the flock on ``guard`` (a lease write)."""
    with guard.open("rb") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(file, fcntl.LOCK_UN)
        return False


def driver_of(state: Path, rollout_id: str) -> str | None:
    lease = open_store(state).open(rollout_id).lease()
    return lease.driver.name if lease is not None and lease.live(time.time()) else None


def alert_trials(trials: int, work: Path, env: dict[str, str]) -> list[float]:
    state, plan = work / "alerts-state", work / "plan.yaml"
    agent, url = started_agent(state, env, work / "alerts-agent.log")
    latencies = []
    try:
        with httpx.Client(base_url=url) as client:
            for trial in range(trials):
                rollout_id = start(plan, state, env)
                wait(lambda rid=rollout_id: driver_of(state, rid), 10, "driven by the agent")
                body = {"version": "4", "status": "firing", "alerts": [{
                    "status": "firing", "fingerprint": f"bench{trial:04d}",
                    "labels": {"alertname": "BenchAlert", "service": "brain-api"},
                    "annotations": {}, "startsAt": "2026-01-01T00:00:00Z"}]}
                sent = time.time()
                answer = client.post("/alertmanager", json=body)
                assert answer.json()["started"], answer.text
                call = wait(lambda rid=rollout_id: first_rollback_call(state, rid), 10,
                            "rolled back")
                latencies.append(call["time"] - sent)
                wait(lambda rid=rollout_id: all(
                    m.id != rid for m in open_store(state).find_active()), 10, "ended")
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)
    return latencies


def first_rollback_call(state: Path, rollout_id: str) -> dict | None:
    return next((e for e in open_store(state).open(rollout_id).journal.events()
                 if e["type"] == "intent" and e["kind"] == "rollback"), None)


def prometheus_trials(trials: int, work: Path, env: dict[str, str]) -> list[float]:
    """Rule condition true -> first rollback request, through real Prometheus and
    Alertmanager (started as the tests start them)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.agent.conftest import Exporter, start_alertmanager
    from tests.sandbox.conftest import start_prometheus

    state, plan = work / "prom-state", work / "plan.yaml"
    agent, url = started_agent(state, env, work / "prom-agent.log")
    exporter = Exporter()
    (work / "am").mkdir()
    (work / "prom").mkdir()
    manager = start_alertmanager(url + "/alertmanager", work / "am")
    prometheus = start_prometheus([exporter.address], work / "prom", rules=RULES,
                                  alertmanager=manager.url.removeprefix("http://"))
    latencies = []
    try:
        wait(lambda: prometheus.query("brain_api_error_ratio"), 30, "scraped", every=0.2)
        for trial in range(trials):
            rollout_id = start(plan, state, env)
            wait(lambda rid=rollout_id: driver_of(state, rid), 10, "driven by the agent")
            exporter.labels, exporter.ratio = f'{{incident="{trial}"}}', 0.2
            true_at = time.time()
            call = wait(lambda rid=rollout_id: first_rollback_call(state, rid), 30,
                        "rolled back by the rule's alert")
            latencies.append(call["time"] - true_at)
            exporter.ratio = 0.0
            wait(lambda rid=rollout_id: all(
                m.id != rid for m in open_store(state).find_active()), 10, "ended")
    finally:
        prometheus.stop()
        manager.stop()
        exporter.close()
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)
    return latencies


def takeover(kind: signal.Signals, work: Path, env: dict[str, str], n: int) -> float:
    state, plan = work / f"takeover-{kind.name}-{n}", work / "plan.yaml"
    ttl_env = {**env, "ROLLOUT_LEASE_TTL": str(TTL)}
    rollout_id = start(plan, state, env)
    agent, _ = started_agent(state, ttl_env, work / f"takeover-{kind.name}-{n}.log")
    follower = None
    try:
        wait(lambda: driver_of(state, rollout_id) == "agent bench", 10, "driven by the agent")
        follower = rollout("resume", rollout_id, "--follow", "--state", str(state),
                           env=ttl_env)
        time.sleep(1.5)                      # the follower is watching by now
        if kind is signal.SIGSTOP:
            lock = open_store(state).open(rollout_id)
            guard = state / "rollouts" / rollout_id / ".lease.json.guard"
            while True:        # between two ticks and two heartbeats, never inside one
                agent.send_signal(signal.SIGSTOP)
                if not guarded(guard) and (lock.lock_holder() or {}).get("pid") != agent.pid:
                    break
                agent.send_signal(signal.SIGCONT)
                time.sleep(0.05)
            lost = time.time()
        else:
            agent.send_signal(kind)
            lost = time.time()
            agent.wait()         # reaped, as its supervisor (systemd, a kubelet) does
        wait(lambda: driver_of(state, rollout_id) == "resume --follow", TTL + 10,
             "taken over")
        return time.time() - lost
    finally:
        for process in (agent, follower):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
                process.wait()


def main(argv: list[str]) -> int:
    rules = 0
    if "--prometheus" in argv:
        at = argv.index("--prometheus")
        rules = int(argv[at + 1])
        argv = argv[:at] + argv[at + 2:]
    trials = int(argv[0]) if argv else 15
    takeovers = int(argv[1]) if len(argv) > 1 else 3
    app = create_sandbox("healthy", seed=1, time_scale=600.0)
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp, running_sandbox(app) as sb:
        work = Path(tmp)
        (work / "plan.yaml").write_text(PLAN)
        env = {**os.environ, "BRAIN_API_URL": sb.url, "NO_COLOR": "1"}
        env.pop("ROLLOUT_STATE", None)
        latencies = alert_trials(trials, work, env)
        median = statistics.median(latencies)
        print(f"alert received -> first rollback request: median {median * 1000:.0f} ms, "
              f"max {max(latencies) * 1000:.0f} ms over {trials} alerts "
              f"(target < {TARGET_ALERT * 1000:.0f} ms)")
        killed = [takeover(signal.SIGKILL, work, env, n) for n in range(takeovers)]
        stopped = [takeover(signal.SIGSTOP, work, env, n) for n in range(takeovers)]
        print(f"takeover after SIGKILL: median {statistics.median(killed):.2f} s "
              f"(target < lease {TTL:g} s + interval {INTERVAL:g} s)")
        print(f"takeover after SIGSTOP (lease expiry): median {statistics.median(stopped):.2f} s "
              f"(target < lease {TTL:g} s + interval {INTERVAL:g} s)")
        ruled = prometheus_trials(rules, work, env) if rules else []
        if ruled:
            print(f"Prometheus rule condition true -> first rollback request: median "
                  f"{statistics.median(ruled):.2f} s, max {max(ruled):.2f} s over {rules} "
                  f"alerts (target < {TARGET_RULE:g} s)")
    ok = (median < TARGET_ALERT and max(killed) < TTL + INTERVAL
          and max(stopped) < TTL + INTERVAL and all(t < TARGET_RULE for t in ruled))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Store benchmark: the directory store beside PostgreSQL (issue 15).

    python bench/store.py [--appends 500] [--rollouts 1000] [--writers 50]

1. Journal append latency, p50/p99, and appends/s (each append durable: fsync'd, or
   committed).
2. `rollout status ID` (a real process) of one rollout among --rollouts stored.
3. --writers processes at once, each advancing its own rollout (its lock, 20 appends,
   released), then every journal checked: no event lost or duplicated, seqs 1..N.
4. News: a driver naps (``wait_for_news``, up to 1 s) while another process appends to
   its rollout (an operator's pause); from the append's return to the nap's end, median
   and max of --news trials. Target: within a second (issue 16); a nap without news lasts
   a second, so this is what the news buys.

PostgreSQL is a real server started in a temporary directory (tests/pg_server.py), on
this machine: its figures have no network round trip in them.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rollout_cli.store import RolloutMeta, open_store  # noqa: E402
from tests.pg_server import PgServer  # noqa: E402

SAMPLE = {"type": "check-assessed", "stage": "canary-25", "check": "success-rate",
          "verdict": "inconclusive", "value": 0.912,
          "reason": "mean(5m)=0.912 is below pass >= 0.95, above fail < 0.90 -> inconclusive"}
ADVANCE_EVENTS = 20
# Targets: an append is a fraction of a stage's smallest step; status stays interactive.
APPEND_P99_MS = 50.0
STATUS_MS = 1500.0
NEWS_MS = 1000.0            # the issue: operators reach a driver "within a second"


def _meta(plan_file: Path, n: int) -> RolloutMeta:
    base = datetime(2024, 5, 1, tzinfo=UTC) + timedelta(seconds=n)
    return RolloutMeta.for_plan(f"plan-{n:04d}", plan_file, base)


def bench_appends(location: str, plan_file: Path, count: int) -> tuple[float, float, float]:
    journal = open_store(location).create(_meta(plan_file, 0)).journal
    times = []
    started = time.perf_counter()
    for n in range(count):
        before = time.perf_counter()
        journal.append(SAMPLE, time=1_700_000_000.0 + n)
        times.append(time.perf_counter() - before)
    rate = count / (time.perf_counter() - started)
    times.sort()
    return times[len(times) // 2] * 1000, times[int(len(times) * 0.99)] * 1000, rate


def bench_status(location: str, plan_file: Path, stored: int) -> float:
    store = open_store(location)
    ids = []
    for n in range(1, stored + 1):
        rollout = store.create(_meta(plan_file, n))
        for k in range(5):
            rollout.journal.append({"type": "note", "text": f"event {k}"}, time=1e9 + k)
        ids.append(rollout.id)
    middle = ids[len(ids) // 2]
    runs = []
    for _ in range(5):
        before = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "rollout_cli", "--state", location,
                               "status", middle, "--output", "json"],
                              capture_output=True, text=True, cwd=ROOT)
        runs.append(time.perf_counter() - before)
        if done.returncode not in (0, 3):
            raise SystemExit(f"status failed ({done.returncode}): {done.stderr}")
    return statistics.median(runs) * 1000


def _advance(location: str, rollout_id: str) -> None:
    rollout = open_store(location).open(rollout_id)
    with rollout.lock("advance", timeout=60):
        for n in range(ADVANCE_EVENTS):
            rollout.journal.append({"type": "note", "text": f"{rollout_id} {n}"}, time=float(n))


def bench_writers(location: str, plan_file: Path, writers: int) -> tuple[float, list[str]]:
    store = open_store(location)
    ids = [store.create(_meta(plan_file, 5000 + n)).id for n in range(writers)]
    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    processes = [context.Process(target=_advance, args=(location, rollout_id))
                 for rollout_id in ids]
    for process in processes:
        process.start()
    for process in processes:
        process.join(300)
    seconds = time.perf_counter() - started
    problems = [f"writer exited {p.exitcode}" for p in processes if p.exitcode != 0]
    for rollout_id in ids:
        events = list(open_store(location).open(rollout_id).journal.events())
        texts = [event.get("text") for event in events[1:]]
        if [event["seq"] for event in events] != list(range(1, ADVANCE_EVENTS + 2)) or (
                texts != [f"{rollout_id} {n}" for n in range(ADVANCE_EVENTS)]):
            problems.append(f"{rollout_id}: events lost, duplicated or out of order")
    return seconds, problems


def _append_when_told(location: str, rollout_id: str, go, appended) -> None:
    journal = open_store(location).open(rollout_id).journal
    while go.wait(30):
        go.clear()
        journal.append({"type": "paused", "reason": "operator"}, time=time.time())
        appended.put(time.perf_counter())


def bench_news(location: str, plan_file: Path, trials: int) -> tuple[float, float]:
    rollout = open_store(location).create(_meta(plan_file, 9000))
    context = multiprocessing.get_context("fork")
    go, appended = context.Event(), context.Queue()
    operator = context.Process(target=_append_when_told,
                               args=(location, rollout.id, go, appended), daemon=True)
    operator.start()
    waits = []
    try:
        for seq in range(1, trials + 1):
            go.set()
            rollout.wait_for_news(seq, 1.0, time.sleep)
            woke = time.perf_counter()
            waits.append(woke - appended.get(timeout=30))
    finally:
        operator.kill()
        operator.join()
    return statistics.median(waits) * 1000, max(waits) * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--appends", type=int, default=500)
    parser.add_argument("--rollouts", type=int, default=1000)
    parser.add_argument("--writers", type=int, default=50)
    parser.add_argument("--news", type=int, default=50)
    args = parser.parse_args()
    server = PgServer(fsync=True)
    server.start()
    work = Path(tempfile.mkdtemp(prefix="bench-store-"))
    plan_file = work / "plan.yaml"
    plan_file.write_text("version: 1\nname: bench\n")
    stores: dict[str, Callable[[str], str]] = {
        "directory": lambda part: str(work / part),
        "postgres": lambda part: server.schema_url(part.replace("-", "_")),
    }
    ok = True
    try:
        print(f"stores: a directory under {tempfile.gettempdir()}, and PostgreSQL on loopback"
              " (fsync on, as in production)")
        for name, where in stores.items():
            p50, p99, rate = bench_appends(where("appends"), plan_file, args.appends)
            status = bench_status(where("status"), plan_file, args.rollouts)
            seconds, problems = bench_writers(where("writers"), plan_file, args.writers)
            news, news_max = bench_news(where("news"), plan_file, args.news)
            ok &= (p99 < APPEND_P99_MS and status < STATUS_MS and not problems
                   and news < NEWS_MS)
            print(f"{name:<10} append p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  ({rate:6.0f}/s)"
                  f"  | status among {args.rollouts}: {status:6.0f} ms"
                  f"  | {args.writers} writers x {ADVANCE_EVENTS} events: {seconds:5.2f} s, "
                  + ("none lost or duplicated" if not problems else "; ".join(problems[:3]))
                  + f"  | news to a napping driver: median {news:5.1f} ms, max {news_max:5.1f}"
                  " ms")
        print(f"targets: append p99 < {APPEND_P99_MS:g} ms, status < {STATUS_MS:g} ms, no event "
              f"lost or duplicated, news median < {NEWS_MS:g} ms: {'PASS' if ok else 'MISS'}")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

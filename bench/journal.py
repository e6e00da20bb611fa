"""Journal benchmark: durable append throughput, and streaming a 7-day-sized journal.

    python bench/journal.py [--appends 2000] [--events 100000] [--dir DIR]

The journal goes in a temporary directory under --dir (default: the system temp dir);
fsync cost depends on that file system, so the report names it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from rollout_cli.store import JournalFile
from rollout_cli.store.atomic import encode_json

# A typical analysis event: a check's verdict with its numbers and reason.
SAMPLE = {
    "type": "check-assessed",
    "stage": "canary-25",
    "check": "success-rate",
    "verdict": "inconclusive",
    "value": 0.912,
    "reason": "mean(5m)=0.912 is below pass >= 0.95, above fail < 0.90 -> inconclusive",
}


def bench_appends(directory: Path, count: int) -> float:
    journal = JournalFile(directory / "appends.jsonl")
    started = time.perf_counter()
    for n in range(count):
        journal.append(SAMPLE, time=1_700_000_000.0 + n)
    return count / (time.perf_counter() - started)


def write_journal(path: Path, count: int) -> None:
    """The same lines ``append`` writes, without an fsync each: only reading is measured."""
    with path.open("wb") as file:
        for seq in range(1, count + 1):
            body = encode_json({"time": 1_700_000_000.0 + seq, **SAMPLE})
            file.write(b'{"seq":%d,' % seq + body[1:] + b"\n")


def measured(read: Callable[[], int]) -> tuple[float, int, int]:
    """Seconds without tracing, then peak traced bytes in a second run, and events read."""
    started = time.perf_counter()
    events = read()
    seconds = time.perf_counter() - started
    tracemalloc.start()
    read()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak, events


def report(label: str, seconds: float, peak: int, events: int) -> None:
    print(f"{label}: {events} events in {seconds:.3f}s, peak memory {peak / 1024:.0f} KiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="rollout-bench-") as name:
        directory = Path(name)
        print(f"directory: {directory}")
        rate = bench_appends(directory, args.appends)
        print(f"append with fsync: {rate:,.0f} events/s over {args.appends} appends")

        journal = JournalFile(directory / "journal.jsonl")
        write_journal(journal.path, args.events)
        size_mib = journal.path.stat().st_size / 2**20
        print(f"journal: {args.events} events, {size_mib:.1f} MiB")
        report("stream-read all", *measured(lambda: sum(1 for _ in journal.events())))
        tail_from = args.events - 100
        report(
            f"stream-read after snapshot at seq {tail_from}",
            *measured(lambda: sum(1 for _ in journal.events(after_seq=tail_from))),
        )
        report("every event into a list", *measured(lambda: len(list(journal.events()))))


if __name__ == "__main__":
    main()

"""Fan-out of one analysis tick over real HTTP (issue 7).

Target: one tick with 50 metrics, each behind an endpoint that answers in 200 ms,
completes in under 1.3x of one query's latency; identical requests are sent once.

A small HTTP/1.1 server on 127.0.0.1, in its own process (so that it does not share the
product's interpreter lock), answers every GET /m/NN after 200 ms, counting the requests
per path and the most requests it held at once (GET /_stats, POST /_reset). The plan has
50 metrics on 50 distinct URLs plus 10 more that read other fields of ten of those URLs
(the brain API's legacy and modern success rates come from one answer), so a tick is 60
metrics and 50 distinct requests. A tick is measured as the reconciler performs it:
``Executor.measure`` with one ``Measure`` of all 60 metrics. One query is the same call
with one metric. Medians of several rounds, interleaved, in the same run and process.

    python bench/fanout.py [ROUNDS]      # default 9
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

import httpx

from rollout_cli.drivers.http import HttpDriver
from rollout_cli.engine import Measure, RolloutState
from rollout_cli.plan import load_text
from rollout_cli.reconcile.executor import Executor

DISTINCT = 50
SHARED = 10          # extra metrics reading another field of an already-used URL
DELAY = 0.2          # seconds each endpoint takes to answer
TARGET_RATIO = 1.3


class _Endpoints:
    """GET /m/NN answers {"value": NN, "half": 0.5} after DELAY; GET /_stats, POST /_reset.

    asyncio in one thread: answering costs microseconds, so the spread of arrivals is the
    client's. (http.server's ThreadingHTTPServer, tried first, starts a thread for every
    new connection and waits for it to run; under 50 concurrent requests on 2 cores its
    own arrivals trailed the client's sends by ~50 ms, and that was measuring the server.)
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.in_flight = 0
        self.peak = 0

    async def connection(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        try:
            while True:                     # keep-alive: requests until the client closes
                head = await reader.readuntil(b"\r\n\r\n")
                method, path, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
                length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                if length:
                    await reader.readexactly(int(length.group(1)))
                writer.write(await self.answer(method, path))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def answer(self, method: str, path: str) -> bytes:
        if method == "POST" and path == "/_reset":
            self.counts.clear()
            self.peak = self.in_flight
            data: Any = {}
        elif path == "/_stats":
            data = {"counts": dict(self.counts), "peak": self.peak}
        else:
            self.counts[path] += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            try:
                await asyncio.sleep(DELAY)
            finally:
                self.in_flight -= 1
            data = {"value": int(path.rsplit("/", 1)[-1]), "half": 0.5}
        body = json.dumps(data).encode()
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


def _serve(port: Connection) -> None:
    async def serve() -> None:
        endpoints = _Endpoints()
        server = await asyncio.start_server(endpoints.connection, "127.0.0.1", 0, backlog=256)
        port.send(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


@contextmanager
def serving() -> Iterator[str]:
    """The endpoints' server in a child process, for the block; yields its URL."""
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_serve, args=(child,), daemon=True)
    process.start()
    try:
        if not parent.poll(10):
            raise RuntimeError("the bench server did not start")
        yield f"http://127.0.0.1:{parent.recv()}"
    finally:
        process.terminate()
        process.join(5)


def plan_text(base_url: str) -> str:
    lines = ["version: 1", "name: fanout-bench",
             f"target: {{base_url: \"{base_url}\", timeout: 5s, retry: {{attempts: 1}}}}",
             "metrics:"]
    lines += [f"  m{n:02d}: {{http: {{get: /m/{n:02d}}}, select: value}}" for n in range(DISTINCT)]
    lines += [f"  shared{n:02d}: {{http: {{get: /m/{n:02d}}}, select: half}}"
              for n in range(SHARED)]
    lines += ["stages:", "  - {name: only}", ""]
    return "\n".join(lines)


def main(rounds: int = 9) -> int:
    with serving() as url:
        return _bench(url, rounds)


def _bench(url: str, rounds: int) -> int:
    loaded = load_text(plan_text(url), "fanout.yaml", {})
    names = tuple(loaded.plan.metrics)
    state = RolloutState(id="bench", plan=loaded.plan.name)
    tick = Measure(names, {}, 0)
    single = Measure(("m00",), {}, 0)
    expected = {name: float(name[1:]) if name.startswith("m") else 0.5 for name in names}
    problems: list[str] = []
    ticks: list[float] = []
    singles: list[float] = []
    peaks: list[int] = []
    with HttpDriver(redactor=loaded.redactor) as http, httpx.Client(base_url=url) as admin:
        executor = Executor(loaded, http)

        def timed(measure: Measure) -> tuple[float, dict[str, Any]]:
            started = time.perf_counter()
            event = executor.measure(measure, state, time.time())
            return time.perf_counter() - started, event

        cold, _ = timed(tick)                 # the first tick also opens the connections
        for _ in range(rounds):
            elapsed, _ = timed(single)
            singles.append(elapsed)
            admin.post("/_reset")
            elapsed, event = timed(tick)
            ticks.append(elapsed)
            stats = admin.get("/_stats").json()
            peaks.append(stats["peak"])
            if event["errors"] or event["values"] != expected:
                problems.append(f"wrong values or errors: {event['errors']}")
            sent = stats["counts"]
            if sorted(sent) != [f"/m/{n:02d}" for n in range(DISTINCT)] or any(
                    count != 1 for count in sent.values()):
                problems.append(f"requests per path {sorted(set(sent.values()))}, "
                                f"{len(sent)} paths; expected each of {DISTINCT} once")
    one = statistics.median(singles)
    whole = statistics.median(ticks)
    ratio = whole / one
    ok = ratio < TARGET_RATIO and not problems
    print(f"fan-out: {len(names)} metrics, {DISTINCT} distinct requests, {DELAY * 1000:.0f} ms "
          f"each, {rounds} rounds (medians)")
    print(f"  one query       {one * 1000:7.1f} ms  (min {min(singles) * 1000:.1f}, "
          f"max {max(singles) * 1000:.1f})")
    print(f"  one tick        {whole * 1000:7.1f} ms  (min {min(ticks) * 1000:.1f}, "
          f"max {max(ticks) * 1000:.1f}; first, cold {cold * 1000:.1f})")
    print(f"  requests in flight at once: max {max(peaks)}, min {min(peaks)} "
          f"(of {DISTINCT})")
    print(f"  requests per tick: {DISTINCT} distinct sent once each"
          if not problems else f"  problems: {'; '.join(sorted(set(problems)))}")
    print(f"tick / query = {ratio:.2f}x (target < {TARGET_RATIO}x, identical requests once): "
          f"{'PASS' if ok else 'MISS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9))

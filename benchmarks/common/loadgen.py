"""A one-thread asyncio HTTP load generator, run as its own process.

    python benchmarks/common/loadgen.py SPEC.json      # prints one JSON result line

SPEC: ``{"url", "headers", "bodies": [str], "mode": "closed"|"open", "concurrency",
"rate", "warmup_s", "duration_s", "timeout_s"}``.

* ``closed``: ``concurrency`` connections, each sends its next request when the previous answer
  arrived (what wrk does). Requests that *complete* inside the measured window count; throughput
  is their number over the window.
* ``open``: requests are *scheduled* every ``1/rate`` seconds whatever the server does, on up to
  ``concurrency`` connections (a request waits for a free one). Latency runs from the scheduled
  time, so the generator's own lateness and queueing count against the server (no coordinated
  omission). Requests scheduled inside the measured window count.

Bodies are sent round-robin, one row per request. Uses aiohttp (and uvloop when present).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0–100) of an already sorted list; NaN when empty."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


class Recorder:
    def __init__(self, window_start: float, window_end: float) -> None:
        self.window_start = window_start
        self.window_end = window_end
        self.latencies: list[float] = []
        self.errors = 0
        self.error_samples: list[str] = []

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(what[:300])


async def _send(session: Any, url: str, body: bytes, headers: dict[str, str]) -> str | None:
    """POST once; None when the answer was a 200, else a short description of what went wrong."""
    try:
        async with session.post(url, data=body, headers=headers) as response:
            payload = await response.read()
            if response.status != 200:
                return f"HTTP {response.status}: {payload[:200]!r}"
            return None
    except Exception as e:  # every failure is an error row, the run goes on
        return f"{type(e).__name__}: {e}"


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    url: str = spec["url"]
    headers = {"Content-Type": "application/json", **spec.get("headers", {})}
    bodies = [b.encode() for b in spec["bodies"]]
    concurrency = int(spec["concurrency"])
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=float(spec.get("timeout_s", 30)))
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        window_start = start + float(spec["warmup_s"])
        window_end = window_start + float(spec["duration_s"])
        rec = Recorder(window_start, window_end)
        if spec["mode"] == "closed":
            await _closed(session, url, headers, bodies, concurrency, rec)
        else:
            await _open(session, url, headers, bodies, float(spec["rate"]), rec)
        finished = time.perf_counter()
    lat = sorted(rec.latencies)
    measured = float(spec["duration_s"])
    return {
        "mode": spec["mode"],
        "concurrency": concurrency,
        "rate": spec.get("rate"),
        "requests": len(lat),
        "errors": rec.errors,
        "error_samples": rec.error_samples,
        "rps": len(lat) / measured,
        "p50_ms": percentile(lat, 50) * 1000,
        "p90_ms": percentile(lat, 90) * 1000,
        "p99_ms": percentile(lat, 99) * 1000,
        "max_ms": (lat[-1] * 1000) if lat else float("nan"),
        "mean_ms": (sum(lat) / len(lat) * 1000) if lat else float("nan"),
        "overrun_s": finished - window_end,
    }


async def _closed(
    session: Any,
    url: str,
    headers: dict[str, str],
    bodies: list[bytes],
    concurrency: int,
    rec: Recorder,
) -> None:
    async def connection(k: int) -> None:
        i = k
        while True:
            sent = time.perf_counter()
            if sent >= rec.window_end:
                return
            problem = await _send(session, url, bodies[i % len(bodies)], headers)
            i += concurrency
            done = time.perf_counter()
            if rec.window_start <= done < rec.window_end:
                if problem is None:
                    rec.latencies.append(done - sent)
                else:
                    rec.error(problem)

    await asyncio.gather(*(connection(k) for k in range(concurrency)))


async def _open(
    session: Any, url: str, headers: dict[str, str], bodies: list[bytes], rate: float, rec: Recorder
) -> None:
    interval = 1.0 / rate
    start = time.perf_counter()
    pending: set[asyncio.Task[None]] = set()

    async def one(scheduled: float, body: bytes) -> None:
        problem = await _send(session, url, body, headers)
        if rec.window_start <= scheduled < rec.window_end:
            if problem is None:
                rec.latencies.append(time.perf_counter() - scheduled)
            else:
                rec.error(problem)

    i = 0
    while True:
        scheduled = start + i * interval
        if scheduled >= rec.window_end:
            break
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(scheduled, bodies[i % len(bodies)]))
        pending.add(task)
        task.add_done_callback(pending.discard)
        i += 1
    if pending:
        await asyncio.gather(*pending)


def main() -> None:
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    try:
        import uvloop

        result = uvloop.run(run(spec))
    except ImportError:
        result = asyncio.run(run(spec))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

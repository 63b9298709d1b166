"""Crash test of feedback durability: ``kill -9`` the server while clients send feedback.

Clients send events with unique idempotency keys (single events and small batches) and record
every key the server acknowledged (2xx). A killer ``SIGKILL``s the server's whole process group
every ``interval_s`` and starts it again. A request that failed (connection refused or reset,
5xx) is retried with the same keys until it is acknowledged, as a real client would. At the
end the store is read directly and, for every acknowledged key, its rows are counted:

* ``acked_lost`` — acknowledged keys with no row (must be 0: acknowledged means committed);
* ``duplicated`` — keys with more than one row (must be 0: retries are de-duplicated).

    .venv/bin/python benchmarks/feedback/crash.py --kills 20            # SQLite
    .venv/bin/python benchmarks/feedback/crash.py --kills 3 --postgres  # PostgreSQL
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from benchmarks.common.processes import ServerProcess, free_port, start_server  # noqa: E402
from benchmarks.feedback.setup import prepare, serve_cmd  # noqa: E402


class Clients:
    """Closed-loop senders that keep every event until it is acknowledged."""

    def __init__(self, url: str, token: str, prediction_ids: list[str], seed: int = 0) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.pids = prediction_ids
        self.rng = random.Random(seed)
        self.acked: set[str] = set()
        self.sent = 0
        self.failures = 0
        self.stop_new = asyncio.Event()
        self._seq = 0

    def _events(self, n: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(n):
            self._seq += 1
            out.append(
                {
                    "type": self.rng.choice(["thumbs", "rating", "click"]),
                    "value": None,
                    "prediction_id": self.rng.choice(self.pids),
                    "idempotency_key": f"crash-{self._seq}",
                }
            )
            kind = out[-1]["type"]
            out[-1]["value"] = {"thumbs": "up", "rating": 4, "click": True}[kind]
        return out

    async def worker(self, session: aiohttp.ClientSession) -> None:
        pending: list[dict[str, Any]] | None = None
        while True:
            if pending is None:
                if self.stop_new.is_set():
                    return
                pending = self._events(self.rng.choice([1, 1, 1, 5, 50]))
            single = len(pending) == 1
            path = "/v1/feedback" if single else "/v1/feedback/batch"
            body = pending[0] if single else {"events": pending}
            try:
                self.sent += 1
                async with session.post(self.url + path, json=body, headers=self.headers) as r:
                    if 200 <= r.status < 300:
                        await r.read()
                        self.acked.update(e["idempotency_key"] for e in pending)
                        pending = None
                        continue
                    self.failures += 1
            except (TimeoutError, aiohttp.ClientError, ConnectionError):
                self.failures += 1
            await asyncio.sleep(0.05)  # the server is down or busy: retry the same events


def _kill_group(server: ServerProcess) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.popen.wait(timeout=30)


async def crash_test(
    *,
    kills: int,
    interval_s: float,
    concurrency: int,
    home: Path,
    database_url: str | None = None,
    log_path: Path | None = None,
) -> dict[str, Any]:
    prepared = prepare(home, database_url, predictions=500)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = log_path or home / "server.log"

    def start() -> ServerProcess:
        server = start_server("learnloop", serve_cmd(port), log_path=log_path, env=prepared.env)
        server.wait_healthy(url + "/v1/health", timeout_s=120)
        return server

    server = start()
    clients = Clients(url, prepared.token, prepared.prediction_ids)
    timeout = aiohttp.ClientTimeout(total=30)
    started = time.monotonic()
    restarts: list[float] = []
    async with aiohttp.ClientSession(timeout=timeout) as session:
        tasks = [asyncio.create_task(clients.worker(session)) for _ in range(concurrency)]
        for _ in range(kills):
            await asyncio.sleep(interval_s)
            _kill_group(server)
            t0 = time.monotonic()
            server = await asyncio.to_thread(start)
            restarts.append(time.monotonic() - t0)
        await asyncio.sleep(interval_s)
        clients.stop_new.set()  # no new events; what is pending is retried until acked
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)
    server.stop()
    elapsed = time.monotonic() - started
    stored = count_keys(
        prepared.env.get("LEARNLOOP_DATABASE__URL") or f"sqlite:///{home / 'learnloop.db'}"
    )
    acked_lost = sum(1 for k in clients.acked if stored.get(k, 0) == 0)
    duplicated = sum(1 for k in clients.acked if stored.get(k, 0) > 1)
    return {
        "backend": "postgresql" if database_url else "sqlite",
        "kills": kills,
        "acked": len(clients.acked),
        "acked_lost": acked_lost,
        "duplicated": duplicated,
        "stored": sum(stored.values()),
        "stored_unacked": sum(1 for k in stored if k not in clients.acked),
        "requests": clients.sent,
        "failed_requests_retried": clients.failures,
        "restart_s_mean": round(sum(restarts) / len(restarts), 3) if restarts else None,
        "duration_s": round(elapsed, 1),
    }


def count_keys(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT idem_key, count(*) FROM feedback WHERE idem_key LIKE 'crash-%' "
                    "GROUP BY idem_key"
                )
            ).all()
        return {k: int(n) for k, n in rows}
    finally:
        engine.dispose()


@contextlib.contextmanager
def backend(postgres: bool) -> Iterator[str | None]:
    if not postgres:
        yield None
        return
    from learnloop.testing.databases import postgres_schema

    with postgres_schema() as url:
        yield url


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--interval", type=float, default=2.0, help="Seconds between kills.")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--postgres", action="store_true", help="Run on PostgreSQL (127.0.0.1).")
    ap.add_argument("--out", type=Path, help="Write the JSON result here.")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ll-crash-") as tmp, backend(args.postgres) as url:
        result = asyncio.run(
            crash_test(
                kills=args.kills,
                interval_s=args.interval,
                concurrency=args.concurrency,
                home=Path(tmp),
                database_url=url,
            )
        )
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    if result["acked_lost"] or result["duplicated"]:
        sys.exit(1)


if __name__ == "__main__":
    main()

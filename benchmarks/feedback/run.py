"""Feedback ingestion benchmark: sustained throughput over HTTP, and the kill -9 crash test.

    make bench-feedback                                   # full: SQLite and PostgreSQL
    .venv/bin/python benchmarks/feedback/run.py --quick   # smoke run

For each backend a fresh learnloop home is prepared (an ingest key and 2,000 ledger rows the
events point at), ``learnloop serve`` is started, and ``wrk`` (one thread) drives it:

* **batch** — ``POST /v1/feedback/batch`` with ``--batch`` events per request, at 4
  connections; events/min = acknowledged events over the measured window;
* **single** — ``POST /v1/feedback``, one event per request, at 64 connections; req/s and the
  p99 latency of each request.

Every event is a fresh one: a Lua ``request`` hook writes a unique idempotency key per event
and cycles the event types (thumbs, rating, click, dwell) and the prediction ids, so the server
does the full work (validation, PII rules, group commit, idempotency check, orphan lookup).
After each run the number of stored rows is checked against the acknowledged events.

Then the crash test (``crash.py``) runs with ``--kills`` kills on each backend. The result goes
to ``benchmarks/results/feedback.json``; the seed reference is 10,000 events/min.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from benchmarks.common import machine, wrk  # noqa: E402
from benchmarks.common.processes import free_port, start_server  # noqa: E402
from benchmarks.feedback.crash import crash_test  # noqa: E402
from benchmarks.feedback.setup import prepare, serve_cmd  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "feedback.json"
SEED_REFERENCE_EVENTS_PER_MIN = 10_000

LUA = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
local pids = { %(pids)s }
local n = #pids
local counter = 0
local prefix = "%(prefix)s"
local kinds = {
  '{"type":"thumbs","value":"up"',
  '{"type":"rating","value":4',
  '{"type":"click"',
  '{"type":"dwell_ms","value":1250',
}
local function event()
  counter = counter + 1
  return kinds[counter %% 4 + 1] .. ',"prediction_id":"' .. pids[counter %% n + 1] ..
    '","idempotency_key":"' .. prefix .. counter .. '"}'
end
local batch = %(batch)d
request = function()
  if batch == 0 then
    return wrk.format(nil, nil, nil, event())
  end
  local parts = {}
  for j = 1, batch do parts[j] = event() end
  return wrk.format(nil, nil, nil, '{"events":[' .. table.concat(parts, ",") .. ']}')
end
"""


def write_script(path: Path, token: str, pids: list[str], batch: int) -> Path:
    body = LUA % {
        "token": token,
        "pids": ", ".join(f'"{p}"' for p in pids[:1000]),
        "prefix": f"b{uuid.uuid4().hex[:8]}-",
        "batch": batch,
    }
    path.write_text(body + wrk._DONE)
    return path


def run_wrk(url: str, script: Path, concurrency: int, duration_s: float) -> dict[str, Any]:
    cmd = wrk.command(url, script, concurrency=concurrency, duration_s=duration_s, timeout_s=30)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 120)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr[-2000:]}")
    return wrk.parse(done.stdout)


def stored_rows(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM feedback")).scalar() or 0)
    finally:
        engine.dispose()


@contextlib.contextmanager
def database(backend: str) -> Iterator[str | None]:
    if backend == "sqlite":
        yield None
        return
    from learnloop.testing.databases import postgres_schema

    with postgres_schema() as url:
        yield url


def throughput(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ll-fbench-") as tmp, database(backend) as db_url:
        home = Path(tmp)
        prepared = prepare(home, db_url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(
            "learnloop",
            serve_cmd(port, args.processes),
            log_path=home / "server.log",
            env=prepared.env,
        )
        try:
            server.wait_healthy(base + "/v1/health")
            url = db_url or f"sqlite:///{home / 'learnloop.db'}"
            result: dict[str, Any] = {"backend": backend, "processes": args.processes}
            # warm-up: both routes, not measured (but counted in the stored check)
            warm_b = run_wrk(
                base + "/v1/feedback/batch",
                write_script(
                    home / "warm-b.lua", prepared.token, prepared.prediction_ids, args.batch
                ),
                2,
                args.warmup,
            )
            warm_s = run_wrk(
                base + "/v1/feedback",
                write_script(home / "warm-s.lua", prepared.token, prepared.prediction_ids, 0),
                16,
                args.warmup,
            )
            acked = (warm_b["requests"] - warm_b["error_kinds"]["status"]) * args.batch
            acked += warm_s["requests"] - warm_s["error_kinds"]["status"]
            batch = run_wrk(
                base + "/v1/feedback/batch",
                write_script(
                    home / "batch.lua", prepared.token, prepared.prediction_ids, args.batch
                ),
                args.batch_connections,
                args.duration,
            )
            ok_batches = batch["requests"] - batch["error_kinds"]["status"]
            acked += ok_batches * args.batch
            result["batch"] = {
                **batch,
                "events_per_request": args.batch,
                "connections": args.batch_connections,
                "events_per_min": ok_batches * args.batch / batch["duration_s"] * 60,
            }
            time.sleep(1)
            single = run_wrk(
                base + "/v1/feedback",
                write_script(home / "single.lua", prepared.token, prepared.prediction_ids, 0),
                args.single_connections,
                args.duration,
            )
            acked += single["requests"] - single["error_kinds"]["status"]
            result["single"] = {**single, "connections": args.single_connections}
        finally:
            server.stop()
        stored = stored_rows(url)
        # wrk counts requests cut off at the end of its window that the server may still commit
        result["stored_rows"] = stored
        result["acknowledged_events"] = acked
        result["stored_minus_acked"] = stored - acked
        # requests still in flight when wrk's window closed are committed but not counted
        bound = (2 + args.batch_connections) * args.batch + 16 + args.single_connections
        result["in_flight_bound"] = bound
        result["stored_consistent"] = 0 <= stored - acked <= bound
        if not result["stored_consistent"]:
            raise RuntimeError(f"stored rows {stored} do not match acknowledged {acked}")
        return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="Short windows, 3 kills.")
    ap.add_argument("--duration", type=float, default=20.0, help="Measured seconds per route.")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--batch", type=int, default=5_000, help="Events per batch request.")
    ap.add_argument("--batch-connections", type=int, default=4)
    ap.add_argument("--single-connections", type=int, default=64)
    ap.add_argument("--processes", type=int, default=1, help="learnloop serve --processes.")
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if args.quick:
        args.duration, args.warmup, args.kills = 5.0, 1.0, 3
    if wrk.available() is None:
        sys.exit("wrk is needed (Debian: apt-get install wrk; `make bench-feedback` installs it)")
    entries = []
    for backend in args.backends.split(","):
        print(f"== {backend}: throughput", flush=True)
        entry = throughput(backend, args)
        print(f"== {backend}: crash test, {args.kills} kills", flush=True)
        with tempfile.TemporaryDirectory(prefix="ll-fcrash-") as tmp, database(backend) as url:
            crash = asyncio.run(
                crash_test(
                    kills=args.kills,
                    interval_s=2.0,
                    concurrency=16,
                    home=Path(tmp),
                    database_url=url,
                )
            )
        entries.append(
            {
                "backend": backend,
                "batch_events_per_min": round(entry["batch"]["events_per_min"]),
                "batch_p99_ms": round(entry["batch"]["p99_ms"], 1),
                "single_rps": round(entry["single"]["rps"], 1),
                "single_p50_ms": round(entry["single"]["p50_ms"], 2),
                "single_p99_ms": round(entry["single"]["p99_ms"], 2),
                "kills": crash["kills"],
                "acked": crash["acked"],
                "acked_lost": crash["acked_lost"],
                "duplicated": crash["duplicated"],
                "vs_seed_reference": round(
                    entry["batch"]["events_per_min"] / SEED_REFERENCE_EVENTS_PER_MIN, 1
                ),
                "details": {"throughput": entry, "crash": crash},
            }
        )
    first = {k: v for k, v in entries[0].items() if k != "details"}
    doc = {
        **first,
        "entries": entries,
        "seed_reference_events_per_min": SEED_REFERENCE_EVENTS_PER_MIN,
        "machine": machine.describe(),
        "command": " ".join(sys.argv),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, default=str))
    print()
    print(
        f"{'backend':<11} {'batch ev/min':>13} {'single rps':>11} {'single p99':>11} "
        f"{'kills':>6} {'acked':>8} {'lost':>5} {'dup':>4}"
    )
    for e in entries:
        print(
            f"{e['backend']:<11} {e['batch_events_per_min']:>13,} {e['single_rps']:>11,.0f} "
            f"{e['single_p99_ms']:>9.1f}ms {e['kills']:>6} {e['acked']:>8,} "
            f"{e['acked_lost']:>5} {e['duplicated']:>4}"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

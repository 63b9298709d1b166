"""API fuzzing, the long run: schemathesis over every operation until N requests, every check.

    make bench-fuzz                                    # 25,000 requests, seed 1
    .venv/bin/python benchmarks/fuzz/run.py --quick    # smoke run, 1,500 requests
    .venv/bin/python benchmarks/fuzz/run.py --requests 50000 --seed 7

A fresh home gets the demo data (``server.py``) and ``learnloop serve`` runs on it. The first
pass runs every phase of schemathesis (explicit examples, coverage, ``--max-examples`` generated
cases per operation, stateful sequences) with ``--seed``; further passes generate new cases
(fuzzing and stateful, seed + 1, + 2, ...) until ``--requests`` requests were sent. Checks,
statuses and the steering of destructive routes are described in ``harness.py``.

Writes ``benchmarks/results/fuzz.json``: ``requests``, ``operations``, ``server_errors``,
``schema_violations``, ``undocumented_status_codes`` (failed requests of those checks),
``failures`` (distinct: operation, check, status, title, message, a curl reproduction), the
machine, the seconds and the schemathesis version. Exits 1 when anything failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import schemathesis  # noqa: E402

from benchmarks.common import machine  # noqa: E402
from benchmarks.fuzz.harness import (  # noqa: E402
    SCHEMA_VIOLATIONS,
    SERVER_ERRORS,
    UNDOCUMENTED,
    FuzzReport,
    fuzz,
)
from benchmarks.fuzz.server import AI4I, logged_errors, prepare, seed_http, serving  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "fuzz.json"
ALL_PHASES = ("examples", "coverage", "fuzzing", "stateful")
MORE_PHASES = ("fuzzing", "stateful")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--requests", type=int, default=25_000, help="stop after this many requests")
    p.add_argument("--seed", type=int, default=1, help="seed of the first pass")
    p.add_argument(
        "--max-examples", type=int, default=100, help="generated cases per operation and pass"
    )
    p.add_argument("--workers", type=int, default=2, help="concurrent requests")
    p.add_argument("--quick", action="store_true", help="smoke run: 1,500 requests, 5 per pass")
    p.add_argument("--data", type=Path, default=AI4I, help="the ai4i2020.csv file")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.quick:
        args.requests, args.max_examples = 1_500, 5
    return args


def progress(report: FuzzReport, started: float) -> None:
    elapsed = time.monotonic() - started
    print(
        f"  {elapsed:6.0f} s  {report.requests:7,d} requests ({report.requests / elapsed:5.1f}/s)"
        f"  {len(report.operations):3d}/{len(report.operations_in_schema)} operations"
        f"  {len(report.findings):3d} distinct failures",
        flush=True,
    )


def table(report: FuzzReport) -> str:
    rows = [("check", "failed requests", "distinct")]
    distinct: dict[str, int] = {}
    for finding in report.failures:
        distinct[finding.check] = distinct.get(finding.check, 0) + 1
    for check in sorted(set(report.failing_checks) | set(distinct)):
        rows.append((check, str(report.failing_checks.get(check, 0)), str(distinct.get(check, 0))))
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"  {r[0]:<{width[0]}}  {r[1]:>{width[1]}}  {r[2]:>{width[2]}}" for r in rows)


def result_json(
    report: FuzzReport, args: argparse.Namespace, info: dict[str, Any], logged: dict[str, int]
) -> dict[str, Any]:
    return {
        "benchmark": "fuzz",
        "command": " ".join(["benchmarks/fuzz/run.py", *args.argv]),
        "schemathesis": schemathesis.__version__,
        "seed": args.seed,
        "requests_target": args.requests,
        "max_examples_per_pass": args.max_examples,
        "workers": args.workers,
        "requests": report.requests,
        "operations": len(report.operations),
        "operations_in_schema": len(report.operations_in_schema),
        "operations_not_checked": sorted(report.operations_in_schema - report.operations),
        "server_errors": report.server_errors,
        "schema_violations": report.schema_violations,
        "undocumented_status_codes": report.undocumented_status_codes,
        "failed_requests_by_check": dict(sorted(report.failing_checks.items())),
        "checks": {
            "server_errors": list(SERVER_ERRORS),
            "schema_violations": list(SCHEMA_VIOLATIONS),
            "undocumented_status_codes": list(UNDOCUMENTED),
        },
        "statuses": {str(k): v for k, v in sorted(report.statuses.items())},
        "failures": [f.as_json() for f in report.failures],
        "engine_errors": report.errors,
        "server_log_errors": logged,
        "seconds": round(report.seconds, 1),
        "cpu_model": info["cpu_model"],
        "machine": info,
        "quick": args.quick,
        "date": time.strftime("%Y-%m-%d"),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine.describe()
    print(f"fuzz: schemathesis {schemathesis.__version__} on {machine.summary(info)}", flush=True)
    report = FuzzReport()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ll-fuzz-") as tmp:
        home, log = Path(tmp) / "home", Path(tmp) / "server.log"
        print("preparing the demo home (two trained models, a batch job)...", flush=True)
        demo = prepare(home, args.data)
        with serving(home, log) as base_url:
            demo = seed_http(base_url, demo)
            print(f"server {base_url}; fuzzing until {args.requests:,} requests", flush=True)
            started = time.monotonic()
            passes = 0
            while report.requests < args.requests:
                phases = ALL_PHASES if passes == 0 else MORE_PHASES
                before = report.requests
                fuzz(
                    base_url, demo, seed=args.seed + passes, max_examples=args.max_examples,
                    phases=phases, workers=args.workers, report=report,
                    progress=lambda r: progress(r, started), stop_after=args.requests,
                )  # fmt: skip
                passes += 1
                print(f"pass {passes} ({', '.join(phases)}): {report.requests - before:,} requests")
                if report.requests == before:
                    break  # nothing left to generate
        logged = logged_errors(log)
    progress(report, started)
    print(f"\n{report.requests:,} requests, {len(report.operations)} operations, "
          f"{report.seconds:.0f} s fuzzing")  # fmt: skip
    print(table(report))
    print(
        f"server errors {report.server_errors}, schema violations {report.schema_violations}, "
        f"undocumented status codes {report.undocumented_status_codes}"
    )
    if report.failures or report.errors:
        print(f"\n{len(report.failures)} distinct failures:\n{report.describe()}")
    if logged:
        print("\nerrors in the server's log:")
        for line, n in logged.items():
            print(f"  {n:5d} x {line}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result_json(report, args, info, logged), indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0 if report.ok and report.requests >= args.requests else 1


if __name__ == "__main__":
    sys.exit(main())

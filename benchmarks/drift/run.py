"""Drift benchmark driver: learnloop's drift engine vs Evidently on the same parquet files.

    .venv/bin/python benchmarks/drift/run.py                 # 100k and 1M rows, both variants
    .venv/bin/python benchmarks/drift/run.py --quick         # 100k rows only
    .venv/bin/python benchmarks/drift/run.py --rows 2000,100000

For every row count the data of ``data.py`` (20 columns) is written as parquet — one reference,
a shifted and an unshifted current window — and each tool runs in a fresh subprocess of its own
virtualenv (``benchmarks/drift/peers.sh`` creates Evidently's): it reads the files, computes its
report, and writes its verdicts and its own timings. The parent measures each child's wall time
and peak RSS (``ru_maxrss`` from ``wait4``). Speedup is the ratio of the report times (drift
computation only, reading excluded, identical for both); process times are kept too.
Writes ``benchmarks/results/drift.json``: the headline is the largest shifted run; ``runs`` holds
every run. README.md beside this file describes the method and its traps.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import machine  # noqa: E402
from benchmarks.common.cpu import busy_fraction  # noqa: E402
from benchmarks.drift import data  # noqa: E402
from benchmarks.drift.compare import compare  # noqa: E402

HERE = Path(__file__).resolve().parent
EVIDENTLY_PY = ROOT / "benchmarks" / ".peers" / "evidently" / "bin" / "python"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "drift.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", default="100000,1000000", help="row counts, comma-separated")
    p.add_argument("--quick", action="store_true", help="100k rows only")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--evidently-python", type=Path, default=EVIDENTLY_PY)
    return p.parse_args(argv)


def measure(cmd: list[str], log: Path) -> dict[str, Any]:
    """Run ``cmd`` to completion; its wall seconds, exit code and peak RSS (MB, from wait4)."""
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[1]} failed ({proc.returncode}):\n{log.read_text()[-3000:]}")
    return {
        "process_s": wall,
        "child_peak_rss_mb": usage.ru_maxrss / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


def run_pair(ref: Path, cur: Path, work: Path, evidently_py: Path) -> dict[str, Any]:
    """Both tools on one (reference, current) pair; each tool's own JSON plus the measurement."""
    results: dict[str, Any] = {}
    kinds = ["--numeric", ",".join(data.NUMERIC), "--categorical", ",".join(data.CATEGORICAL)]
    commands = {
        "learnloop": [sys.executable, str(HERE / "learnloop_runner.py")],
        "evidently": [str(evidently_py), str(HERE / "evidently_runner.py")],
    }
    for tool, cmd in commands.items():
        out = work / f"{tool}-{cur.stem}.json"
        extra = kinds if tool == "evidently" else []
        busy = busy_fraction(1.0)
        measured = measure([*cmd, str(ref), str(cur), str(out), *extra], work / f"{tool}.log")
        results[tool] = {**json.loads(out.read_text()), **measured, "busy_before": busy}
        print(f"  {tool:9s} report {results[tool]['report_s']:7.2f} s, process "
              f"{measured['process_s']:7.2f} s, peak {measured['child_peak_rss_mb']:7.0f} MB",
              flush=True)  # fmt: skip
    return results


def one_run(rows: int, shifted: bool, pair: dict[str, Any]) -> dict[str, Any]:
    ours, theirs = pair["learnloop"], pair["evidently"]
    comparison = compare(ours["report"], theirs["columns"], data.truth(shifted))
    memory = {
        tool: {k: pair[tool][k] for k in ("rss_loaded_mb", "peak_rss_mb", "child_peak_rss_mb")}
        for tool in pair
    }
    return {
        "rows": rows,
        "variant": "shifted" if shifted else "none",
        "columns": ours["report"]["n_columns"],
        "learnloop_s": ours["report_s"],
        "evidently_s": theirs["report_s"],
        "speedup": theirs["report_s"] / ours["report_s"],
        "process_s": {tool: pair[tool]["process_s"] for tool in pair},
        "process_speedup": theirs["process_s"] / ours["process_s"],
        "read_s": {tool: pair[tool]["read_s"] for tool in pair},
        "cpu_s": {tool: pair[tool]["cpu_s"] for tool in pair},
        "busy_before": {tool: pair[tool]["busy_before"] for tool in pair},
        "learnloop_threads": ours["report"]["timings"]["threads"],
        "memory": memory,
        "memory_ratio": theirs["child_peak_rss_mb"] / ours["child_peak_rss_mb"],
        **comparison,
    }


def print_table(runs: list[dict[str, Any]]) -> None:
    head = (
        f"{'rows':>9} {'variant':8} {'learnloop s':>11} {'Evidently s':>11} {'speedup':>8} "
        f"{'LL MB':>7} {'Ev MB':>7} {'agree':>6} {'agree wp':>8} {'LL ok':>6} {'Ev ok':>6}"
    )
    print("\n" + head + "\n" + "-" * len(head))
    for r in runs:
        wp = "–" if r["agreement_well_powered"] is None else f"{r['agreement_well_powered']:.0%}"
        print(
            f"{r['rows']:>9,} {r['variant']:8} {r['learnloop_s']:>11.2f} {r['evidently_s']:>11.2f} "
            f"{r['speedup']:>7.1f}× {r['memory']['learnloop']['child_peak_rss_mb']:>7.0f} "
            f"{r['memory']['evidently']['child_peak_rss_mb']:>7.0f} {r['agreement']:>6.0%} "
            f"{wp:>8} {r['learnloop_correct']:>3}/{r['columns']} {r['evidently_correct']:>3}/"
            f"{r['columns']}"
        )
    for r in runs:
        for d in r["disagreements"]:
            print(f"  {r['rows']:,} {r['variant']}: {d['column']}: {d['why']}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rows_list = [100_000] if args.quick else [int(r) for r in args.rows.split(",")]
    if not args.evidently_python.exists():
        raise SystemExit(f"{args.evidently_python} missing: run benchmarks/drift/peers.sh first")
    info = machine.describe()
    print(f"drift benchmark on {machine.summary(info)}", flush=True)
    runs = []
    with tempfile.TemporaryDirectory(prefix="drift-bench-") as tmp:
        work = Path(tmp)
        for rows in rows_list:
            ref_path = work / "reference.parquet"
            for shifted in (True, False):
                reference, current = data.windows(rows, shifted)
                reference.to_parquet(ref_path)
                cur_path = work / f"current-{'shifted' if shifted else 'none'}.parquet"
                current.to_parquet(cur_path)
                del reference, current
                print(f"{rows:,} rows, {'shifted' if shifted else 'no shift'}:", flush=True)
                pair = run_pair(ref_path, cur_path, work, args.evidently_python)
                runs.append(one_run(rows, shifted, pair))
    print_table(runs)
    top = max((r for r in runs if r["variant"] == "shifted"), key=lambda r: r["rows"])
    keys = ["rows", "columns", "learnloop_s", "evidently_s", "speedup", "agreement"]
    result = {k: top[k] for k in keys}
    result["disagreements"] = top["disagreements"]
    result["agreement_well_powered"] = top["agreement_well_powered"]
    result["memory"] = {
        "learnloop_peak_mb": top["memory"]["learnloop"]["child_peak_rss_mb"],
        "evidently_peak_mb": top["memory"]["evidently"]["child_peak_rss_mb"],
        "ratio": top["memory_ratio"],
        "per_run": {f"{r['rows']}-{r['variant']}": r["memory_ratio"] for r in runs},
    }
    result["runs"] = runs
    result["machine"] = info
    result["command"] = " ".join(["benchmarks/drift/run.py", *(argv or sys.argv[1:])])
    result["quick"] = args.quick
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()

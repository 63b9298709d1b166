"""learnloop's side of the drift benchmark; runs in learnloop's own virtualenv.

    python learnloop_runner.py REFERENCE.parquet CURRENT.parquet OUT.json

Reads both parquet files, runs :func:`learnloop.loop.drift.drift_report` with the default
:class:`~learnloop.loop.drift.DriftConfig`, and writes the report (histograms dropped), the wall
time of the report alone, the time spent reading, and the process's peak RSS — the same fields
as ``evidently_runner.py``.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import pandas as pd


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("reference")
    p.add_argument("current")
    p.add_argument("out")
    args = p.parse_args()

    started = time.perf_counter()
    from learnloop.loop.drift import drift_report

    import_s = time.perf_counter() - started
    started = time.perf_counter()
    reference = pd.read_parquet(args.reference)
    current = pd.read_parquet(args.current)
    read_s = time.perf_counter() - started
    rss_loaded = _rss_mb()

    started = time.perf_counter()
    report = drift_report(reference, current)
    report_s = time.perf_counter() - started
    for column in report["columns"].values():
        column.pop("histogram", None)
    out = {
        "tool": "learnloop",
        "import_s": import_s,
        "read_s": read_s,
        "report_s": report_s,
        "rss_loaded_mb": rss_loaded,
        "peak_rss_mb": _rss_mb(),
        "report": report,
    }
    with open(args.out, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()

"""Evidently's side of the drift benchmark; runs inside ``benchmarks/.peers/evidently/``.

    python evidently_runner.py REFERENCE.parquet CURRENT.parquet OUT.json \
        --numeric a,b --categorical c,d

Reads both parquet files, runs ``Report([DataDriftPreset()])`` (Evidently 0.7, default
thresholds) with the column kinds given explicitly, and writes per-column method, threshold,
score and verdict, the wall time of the report alone (``Dataset.from_pandas`` + ``run`` +
``dict``), the time spent reading, and the process's peak RSS. Telemetry is off
(``DO_NOT_TRACK=1``, set before Evidently is imported).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import time

os.environ.setdefault("DO_NOT_TRACK", "1")

import pandas as pd

METRIC = re.compile(
    r"ValueDrift\(column=(?P<column>.+),method=(?P<method>.+),threshold=(?P<t>.+)\)"
)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("reference")
    p.add_argument("current")
    p.add_argument("out")
    p.add_argument("--numeric", default="")
    p.add_argument("--categorical", default="")
    args = p.parse_args()

    started = time.perf_counter()
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    import_s = time.perf_counter() - started
    started = time.perf_counter()
    reference = pd.read_parquet(args.reference)
    current = pd.read_parquet(args.current)
    read_s = time.perf_counter() - started
    rss_loaded = _rss_mb()

    definition = DataDefinition(
        numerical_columns=[c for c in args.numeric.split(",") if c],
        categorical_columns=[c for c in args.categorical.split(",") if c],
    )
    started = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    result = snapshot.dict()
    report_s = time.perf_counter() - started

    columns, share = {}, None
    for metric in result["metrics"]:
        match = METRIC.fullmatch(metric["metric_name"])
        if match:
            threshold, score = float(match["t"]), float(metric["value"])
            columns[match["column"]] = {
                "method": match["method"],
                "threshold": threshold,
                "score": score,
                "drift": score >= threshold,  # Evidently's rule for distance methods
            }
        elif metric["metric_name"].startswith("DriftedColumnsCount"):
            share = metric["value"]
    out = {
        "tool": "evidently",
        "import_s": import_s,
        "read_s": read_s,
        "report_s": report_s,
        "rss_loaded_mb": rss_loaded,
        "peak_rss_mb": _rss_mb(),
        "columns": columns,
        "drifted_columns": share,
    }
    with open(args.out, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()

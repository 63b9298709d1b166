"""Drift of a whole data set: every column's verdict, the share drifted, the dataset verdict.

Columns are computed in a thread pool (``DriftConfig.n_jobs``): the heavy work — sorting,
merging, ``searchsorted`` — runs inside numpy with the GIL released, so threads use every core
without copying the frame into worker processes. Each column is read as a view where its dtype
allows; only one column's temporaries per thread are alive at a time.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

from learnloop.core.errors import InvalidInput, Issue
from learnloop.loop.drift.columns import Kind, column_drift
from learnloop.loop.drift.config import DriftConfig


def _threads(config: DriftConfig, columns: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(config.n_jobs or cores or 1, columns))


def _check_columns(
    reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str] | None
) -> list[str]:
    if columns is None:
        present = set(current.columns)
        return [c for c in reference.columns if c in present]
    issues = [
        Issue(loc=str(c), message=f"missing from the {side} data")
        for c in columns
        for side, frame in (("reference", reference), ("current", current))
        if c not in frame.columns
    ]
    if issues:
        raise InvalidInput("unknown drift columns", issues)
    return list(columns)


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    config: DriftConfig | None = None,
    prediction_column: str | None = None,
    kinds: Mapping[str, Kind] | None = None,
) -> dict[str, Any]:
    """Drift report of ``current`` against ``reference``; a JSON-able dict.

    ``columns`` defaults to the reference's columns also present in ``current``;
    ``prediction_column`` (added to ``columns`` when missing) is reported once more under
    ``prediction`` — the model's output drifting is often the first sign. ``kinds`` overrides
    the dtype-based kind of some columns.

    Keys: ``n_reference``, ``n_current``, ``columns`` (name → :func:`column_drift` result, in
    order), ``drifted`` (names), ``n_columns``, ``n_drifted``, ``share_drifted``,
    ``dataset_drift`` (``share_drifted >= config.dataset_share``), ``underpowered`` (names whose
    test cannot reliably see a threshold-sized effect at these sample sizes), ``prediction``,
    ``config`` and ``timings`` (``total_s``, ``columns_s`` summed over columns, ``threads``).
    Raises :class:`InvalidInput` when a named column is missing from either frame.
    """
    config = config or DriftConfig()
    started = time.perf_counter()
    names = _check_columns(reference, current, columns)
    if prediction_column is not None and prediction_column not in names:
        names += _check_columns(reference, current, [prediction_column])
    kinds = kinds or {}
    threads = _threads(config, len(names))

    def one(name: str) -> dict[str, Any]:
        result = column_drift(reference[name], current[name], config, kind=kinds.get(name))
        return {"column": str(name), **result}

    if threads == 1:
        results = [one(name) for name in names]
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            results = list(pool.map(one, names))
    by_name = {r["column"]: r for r in results}
    drifted = [r["column"] for r in results if r["drift"]]
    share = len(drifted) / len(results) if results else 0.0
    return {
        "n_reference": len(reference),
        "n_current": len(current),
        "columns": by_name,
        "drifted": drifted,
        "n_columns": len(results),
        "n_drifted": len(drifted),
        "share_drifted": share,
        "dataset_drift": bool(results) and share >= config.dataset_share,
        "underpowered": [r["column"] for r in results if not r["power_ok"]],
        "prediction": by_name.get(str(prediction_column)) if prediction_column else None,
        "config": dataclasses.asdict(config),
        "timings": {
            "total_s": time.perf_counter() - started,
            "columns_s": sum(r["seconds"] for r in results),
            "threads": threads,
        },
    }

"""The anonymized frame and its report, built from the chosen lattice node."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from learnloop.loop.privacy.anonymity.ladder import _Ladder
from learnloop.loop.privacy.anonymity.lattice import _distinct_per_class, _Lattice


@dataclass
class AnonymizationResult:
    """What :func:`anonymize` produced.

    ``frame`` keeps the input's index and column order: QI columns hold generalized text,
    suppressed rows are gone, every other column is untouched. ``k`` is the smallest class size
    (0 when no row is left); ``l`` the smallest number of distinct values of any sensitive column
    in any class, ``None`` without sensitive columns. ``report`` is JSON-serializable.
    """

    frame: pd.DataFrame
    levels: dict[str, int]
    suppressed: int
    k: int
    l: int | None  # noqa: E741 - the name of the privacy parameter
    report: dict[str, Any] = field(default_factory=dict)


def _result(
    frame: pd.DataFrame,
    ladders: Sequence[_Ladder],
    lattice: _Lattice,
    levels: tuple[int, ...],
    method: str,
    sensitive: Sequence[str],
    k_target: int,
    l_target: int | None,
    max_suppression: float,
) -> AnonymizationResult:
    node = lattice.evaluate(levels)
    kept = ~node.violating
    n = len(frame)
    out = frame.copy()
    for ladder, level in zip(ladders, levels, strict=True):
        out[ladder.name] = ladder.row_labels(level)
    out = out.loc[kept]

    kept_classes = node.classes[kept]
    count = int(node.classes.max()) + 1 if n else 0
    sizes = np.bincount(kept_classes, minlength=count)
    sizes = sizes[sizes > 0]
    k_achieved = int(sizes.min()) if sizes.size else 0
    l_achieved: int | None = None
    if sensitive:
        per_column = []
        for codes in lattice.sensitive_codes:
            distinct = _distinct_per_class(kept_classes, codes[kept], count)
            present = distinct[np.bincount(kept_classes, minlength=count) > 0]
            per_column.append(int(present.min()) if present.size else 0)
        l_achieved = min(per_column)

    n_kept = int(kept.sum())
    qi_report: dict[str, Any] = {}
    ncp_kept = []
    for ladder, level in zip(ladders, levels, strict=True):
        row_ncp = ladder.ncp[level][ladder.codes0][kept]
        value = float(row_ncp.mean()) if n_kept else 0.0
        ncp_kept.append(value)
        qi_report[ladder.name] = {
            "kind": ladder.kind,
            "level": level,
            "max_level": ladder.max_level,
            "description": ladder.descriptions[level],
            "ncp": value,
        }
    report: dict[str, Any] = {
        "k_target": int(k_target),
        "l_target": None if l_target is None else int(l_target),
        "k": k_achieved,
        "l": l_achieved,
        "sensitive": list(sensitive),
        "rows_in": n,
        "rows_out": n_kept,
        "suppressed": node.violations,
        "suppressed_fraction": node.violations / n if n else 0.0,
        "max_suppression": float(max_suppression),
        "classes": int(sizes.size),
        "quasi_identifiers": qi_report,
        "information_loss": {
            "ncp": float(np.mean(ncp_kept)),
            "ncp_with_suppression": node.loss,
            "discernibility": int((sizes.astype(np.int64) ** 2).sum()) + node.violations * n,
            "average_class_size_ratio": (n_kept / sizes.size / k_target) if sizes.size else 0.0,
        },
        "search": {"method": method, "nodes_evaluated": lattice.evaluated},
    }
    return AnonymizationResult(
        frame=out,
        levels={ladder.name: level for ladder, level in zip(ladders, levels, strict=True)},
        suppressed=node.violations,
        k=k_achieved,
        l=l_achieved,
        report=report,
    )

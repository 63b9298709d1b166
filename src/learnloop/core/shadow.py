"""The shadow report: how a shadow version's outputs and latency compare with the served ones."""

from __future__ import annotations

from collections.abc import Sequence
from statistics import median
from typing import Any

from learnloop.core.ledger import PredictionRecord


def shadow_report(pairs: Sequence[tuple[PredictionRecord, PredictionRecord]]) -> dict[str, Any]:
    """Agreement of ``prediction`` fields (exact for labels, mean |Δ| for numbers) and latency."""
    if not pairs:
        return {"pairs": 0, "agreement": None}
    same = 0
    deltas: list[float] = []
    versions: dict[str, int] = {}
    for served, shadow in pairs:
        a, b = served.output.get("prediction"), shadow.output.get("prediction")
        same += int(a == b)
        if isinstance(a, int | float) and isinstance(b, int | float):
            deltas.append(abs(float(a) - float(b)))
        key = f"{served.version}->{shadow.version}"
        versions[key] = versions.get(key, 0) + 1
    return {
        "pairs": len(pairs),
        "agreement": same / len(pairs),
        "mean_abs_difference": sum(deltas) / len(deltas) if deltas else None,
        "served_latency_ms_p50": median(p[0].latency_ms for p in pairs),
        "shadow_latency_ms_p50": median(p[1].latency_ms for p in pairs),
        "versions": versions,
    }

"""Analytics over the registry, the ledger and the feedback: learning curves, versions side by
side, performance per segment, and the return on retraining.

* **learning curves** — every metric a version's training run logged per step (MLflow
  history), e.g. validation ROC-AUC per boosting chunk;
* **comparison** — per version: validation metrics, online accuracy on labelled predictions,
  served latency p50/p95/p99 and request count from the ledger, artifact size, training time,
  and whether it is flagged "retrain required";
* **segments** — online accuracy and negative-feedback rate of labelled predictions grouped by
  an input column (numeric columns in quantile bins);
* **retraining ROI** — for each version against the one before: the gain in a metric, its value
  (``value_per_point`` per 0.01 of the metric), the compute cost (training seconds ×
  ``cost_per_hour``) and their ratio.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from learnloop.core.errors import InvalidInput, Issue
from learnloop.core.registry import RegistryService
from learnloop.loop.feedback import FeedbackService
from learnloop.storage.registry.mlflow_registry import MlflowModelRegistry
from learnloop.storage.sql.serving import SqlPredictionStore

CURVE_SKIP = ("final_", "train_seconds")


class Analytics:
    def __init__(
        self,
        registry: RegistryService,
        mlflow: MlflowModelRegistry,
        predictions: SqlPredictionStore,
        feedback: FeedbackService,
    ) -> None:
        self.registry = registry
        self.mlflow = mlflow
        self.predictions = predictions
        self.feedback = feedback

    def _versions(self, model: str, versions: Sequence[str] | None) -> list[Any]:
        found = self.registry.list_versions(model)
        if versions:
            wanted = set(versions)
            unknown = wanted - {v.version for v in found}
            if unknown:
                raise InvalidInput("unknown versions", [Issue("versions", str(sorted(unknown)))])
            found = [v for v in found if v.version in wanted]
        return found

    def learning_curves(self, model: str, versions: Sequence[str] | None = None) -> dict[str, Any]:
        out = []
        for v in self._versions(model, versions):
            curves: dict[str, list[dict[str, float]]] = {}
            if v.run_id:
                for key in self.mlflow.run_metrics(v.run_id):
                    if key.startswith(CURVE_SKIP):
                        continue
                    curves[key] = [
                        {"step": s, "value": x}
                        for s, x in self.mlflow.metric_history(v.run_id, key)
                    ]
            out.append({"version": v.version, "run_id": v.run_id, "curves": curves})
        return {"model": model, "versions": out}

    def compare(self, model: str, versions: Sequence[str] | None = None) -> dict[str, Any]:
        chosen = self._versions(model, versions)
        self.feedback.flush_ledger()
        served = self.predictions.list(model, limit=200_000)
        latency: dict[str, list[float]] = {}
        for r in served:
            latency.setdefault(r.version, []).append(r.latency_ms)
        online: dict[str, list[bool]] = {}
        for e in self.feedback.labelled(model):
            if e.correct is not None:
                online.setdefault(e.prediction.version, []).append(bool(e.correct))
        rows = []
        for v in chosen:
            lat = np.array(latency.get(v.version, []))
            hits = online.get(v.version, [])
            run = self.mlflow.run_metrics(v.run_id) if v.run_id else {}
            size = sum(
                f.stat().st_size
                for f in self.registry.registry.artifact_path(model, v.version).rglob("*")
                if f.is_file()
            )
            rows.append(
                {
                    "version": v.version,
                    "aliases": list(v.aliases),
                    "created_at": v.created_at.isoformat(),
                    "dataset_id": v.dataset_id,
                    "validation": dict(v.metrics),
                    "online": {
                        "labelled": len(hits),
                        "accuracy": round(sum(hits) / len(hits), 6) if hits else None,
                    },
                    "latency_ms": {
                        "requests": int(lat.size),
                        **(
                            {
                                q: round(float(np.percentile(lat, p)), 3)
                                for q, p in (("p50", 50), ("p95", 95), ("p99", 99))
                            }
                            if lat.size
                            else {}
                        ),
                    },
                    "size_bytes": size,
                    "train_seconds": run.get("train_seconds"),
                    "retrain_required": v.retrain_required,
                }
            )
        return {"model": model, "versions": rows}

    def segments(self, model: str, by: str, *, bins: int = 4, min_count: int = 5) -> dict[str, Any]:
        examples = [e for e in self.feedback.labelled(model)]
        frame = pd.DataFrame(
            [
                {
                    "segment": (e.prediction.inputs or {}).get(by),
                    "correct": e.correct,
                    "negative": e.negative,
                    "version": e.prediction.version,
                }
                for e in examples
            ]
        )
        if frame.empty or frame["segment"].isna().all():
            raise InvalidInput("no such segment", [Issue("by", f"no labelled input has {by!r}")])
        if pd.api.types.is_numeric_dtype(frame["segment"]) and frame["segment"].nunique() > bins:
            frame["segment"] = pd.qcut(frame["segment"], bins, duplicates="drop").astype(str)
        out = []
        for seg, group in frame.groupby("segment", dropna=False):
            known = group["correct"].dropna()
            out.append(
                {
                    "segment": str(seg),
                    "count": len(group),
                    "accuracy": round(float(known.mean()), 6) if len(known) else None,
                    "negative_rate": round(float(group["negative"].mean()), 6),
                    "too_small": len(group) < min_count,
                }
            )
        overall = frame["correct"].dropna()
        return {
            "model": model,
            "by": by,
            "overall_accuracy": round(float(overall.mean()), 6) if len(overall) else None,
            "segments": sorted(out, key=lambda s: (s["accuracy"] is None, s["accuracy"] or 0)),
        }

    def roi(
        self, model: str, *, metric: str, value_per_point: float, cost_per_hour: float
    ) -> dict[str, Any]:
        versions = self._versions(model, None)
        rows = []
        previous = None
        for v in versions:
            value = v.metrics.get(metric)
            run = self.mlflow.run_metrics(v.run_id) if v.run_id else {}
            seconds = run.get("train_seconds")
            row: dict[str, Any] = {"version": v.version, metric: value, "train_seconds": seconds}
            if previous is not None and value is not None and previous.get(metric) is not None:
                gain = value - previous[metric]
                worth = gain / 0.01 * value_per_point
                cost = (seconds or 0.0) / 3600 * cost_per_hour
                row.update(
                    gain=round(gain, 6),
                    value=round(worth, 4),
                    cost=round(cost, 6),
                    roi=round(worth / cost, 3) if cost > 0 else None,
                )
            rows.append(row)
            previous = {metric: value}
        return {
            "model": model,
            "metric": metric,
            "value_per_point": value_per_point,
            "cost_per_hour": cost_per_hour,
            "versions": rows,
        }

"""The drift monitor: a window of the prediction ledger against a reference, stored as a report.

``DriftMonitor.run(model, window=…)`` compares the inputs served in the window with a
reference — the training snapshot of the version that served most of the window
(``reference="training"``), or the window just before (``reference="previous"``) — and reports:

* **data drift** — :func:`learnloop.loop.drift.drift_report` over the input columns both sides
  have, without row identifiers (effect size *and* significance per column; the dataset
  drifts when a share of columns does);
* **prediction drift** — the predicted value (and, against a previous window, the confidence)
  compared the same way; against training data the predictions are compared with the training
  labels' distribution;
* **concept / performance drift** — on the window's labelled predictions (ledger ⋈ feedback):
  accuracy now against the version's validation accuracy, and a Page–Hinkley detector over the
  error stream in prediction order.

The report is stored (``GET /v1/drift/report/{model}``, JSON or HTML) and, when anything
drifted, an alert of kind ``drift`` is raised.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pandas as pd

from learnloop.core.datasets import DatasetService
from learnloop.core.errors import InvalidInput, Issue
from learnloop.core.ledger import PredictionRecord
from learnloop.core.registry import RegistryService
from learnloop.loop.drift import DriftConfig, PageHinkley, column_drift, drift_report
from learnloop.loop.feedback import FeedbackService
from learnloop.loop.jsonsafe import plain
from learnloop.storage.sql.alerts import SqlAlertStore
from learnloop.storage.sql.monitors import SqlMonitorReports
from learnloop.storage.sql.serving import SqlPredictionStore

META = {"prediction_id", "subject_id", "predicted_at", "split", "_synthetic"}


def _inputs(records: list[PredictionRecord]) -> pd.DataFrame:
    return pd.DataFrame([dict(r.inputs or {}) for r in records])


def _id_like(column: pd.Series) -> bool:
    """Row identifiers (every value distinct, integers or strings) are not features: they
    "drift" by construction."""
    kind = column.dtype.kind
    return kind in "iuOS" and len(column) > 20 and column.nunique() == len(column)


def _predicted(records: list[PredictionRecord]) -> pd.Series:
    return pd.Series([str(r.output.get("prediction")) for r in records], dtype=object)


class DriftMonitor:
    def __init__(
        self,
        predictions: SqlPredictionStore,
        feedback: FeedbackService,
        registry: RegistryService,
        datasets: DatasetService,
        reports: SqlMonitorReports,
        alerts: SqlAlertStore,
    ) -> None:
        self.predictions = predictions
        self.feedback = feedback
        self.registry = registry
        self.datasets = datasets
        self.reports = reports
        self.alerts = alerts

    def run(
        self,
        model: str,
        *,
        window: timedelta,
        reference: Literal["training", "previous"] = "training",
        reference_window: timedelta | None = None,
        columns: list[str] | None = None,
        config: DriftConfig | None = None,
        limit: int = 200_000,
    ) -> dict[str, Any]:
        self.registry.get_model(model)
        self.feedback.flush_ledger()
        now = datetime.now(UTC)
        since = now - window
        current = self.predictions.list(model, limit=limit, since=since)
        if not current:
            raise InvalidInput("nothing to monitor", [Issue("window", "no predictions in it")])
        version = Counter(r.version for r in current).most_common(1)[0][0]
        record = self.registry.get_version(model, version)
        target = str(record.params.get("target", ""))
        cur_frame = _inputs(current)
        if reference == "training":
            if not record.dataset_id:
                raise InvalidInput("no training data", [Issue("reference", "use 'previous'")])
            train = self.datasets.load(record.dataset_id)
            dropped = {*META, target, *record.params.get("drop_columns", [])}
            ref_frame = train[[c for c in train.columns if c not in dropped]]
            ref_pred = train[target].astype(str) if target in train.columns else None
            ref_label = f"training snapshot {record.dataset_id} (version {version})"
        else:
            span = reference_window or window
            older = self.predictions.list(model, limit=limit, since=since - span)
            previous = [r for r in older if r.created_at < since]
            if not previous:
                raise InvalidInput("empty reference", [Issue("reference_window", "no predictions")])
            ref_frame = _inputs(previous)
            ref_pred = _predicted(previous)
            ref_label = f"predictions from {(since - span).isoformat()} to {since.isoformat()}"
        candidates = columns or [c for c in ref_frame.columns if not _id_like(ref_frame[c])]
        wanted = [c for c in candidates if c in cur_frame.columns]
        if not wanted:
            raise InvalidInput("no common columns", [Issue("columns", "none in both windows")])
        config = config or DriftConfig()
        data = drift_report(ref_frame[wanted], cur_frame[wanted], config=config)
        prediction = None
        if ref_pred is not None:
            prediction = column_drift(
                ref_pred.reset_index(drop=True), _predicted(current), config, kind="categorical"
            )
        concept = self._concept(model, since, record.metrics)
        verdict = bool(
            data["dataset_drift"]
            or (prediction is not None and prediction["drift"])
            or concept.get("detected")
        )
        summary = {
            "window": {"since": since.isoformat(), "until": now.isoformat()},
            "reference": ref_label,
            "rows": {"reference": len(ref_frame), "current": len(cur_frame)},
            "data_drift": bool(data["dataset_drift"]),
            "share_drifted": data["share_drifted"],
            "drifted_columns": data["drifted"],
            "prediction_drift": None if prediction is None else bool(prediction["drift"]),
            "concept_drift": concept,
            "drift": verdict,
        }
        report = {"summary": summary, "data": data, "prediction": prediction}
        stored = self.reports.add(model, "drift", verdict, summary, plain(report))
        if verdict:
            what = ", ".join(data["drifted"][:5]) or "predictions/performance"
            self.alerts.raise_alert(
                key=f"drift:{model}:{stored['id']}",
                kind="drift",
                model=model,
                severity="warning",
                message=f"drift in {model}: {what}",
                details={"report": stored["id"], **summary},
            )
        return {**stored, "summary": summary}

    def _concept(self, model: str, since: datetime, metrics: Any) -> dict[str, Any]:
        examples = [e for e in self.feedback.labelled(model, since=since) if e.correct is not None]
        if not examples:
            return {"labelled": 0, "detected": False, "reason": "no labelled predictions"}
        examples.sort(key=lambda e: e.prediction.created_at)
        errors = [0.0 if e.correct else 1.0 for e in examples]
        detector = PageHinkley()
        at = next((i for i, x in enumerate(errors) if detector.update(x)), None)
        accuracy = 1 - sum(errors) / len(errors)
        baseline = metrics.get("accuracy") if hasattr(metrics, "get") else None
        drop = None if baseline is None else round(float(baseline) - accuracy, 6)
        return {
            "labelled": len(examples),
            "accuracy": round(accuracy, 6),
            "validation_accuracy": baseline,
            "accuracy_drop": drop,
            "page_hinkley_at": at,
            "detected": at is not None,
        }

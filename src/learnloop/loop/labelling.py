"""Active learning over the ledger: pick the predictions most worth labelling, queue them for
labellers (claimed with a lease that expires), and turn each answer into a ``label`` feedback
event (durable, idempotent per task).

The pool is the model's served predictions that have no label, correction or thumbs yet and are
not queued. Class probabilities come from the stored outputs (no re-prediction); numeric inputs
(stored with the ledger) are the features of the diversity strategies, standardized, with the
already-labelled predictions as the starting centres of k-center.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from learnloop.core.errors import InvalidInput, Issue
from learnloop.core.feedback import FeedbackIn
from learnloop.core.ledger import PredictionRecord
from learnloop.core.stores import FeedbackAnalytics, LabelQueue
from learnloop.loop.feedback import FeedbackService

NEEDS_FEATURES = frozenset({"diversity", "mix"})


def probability_matrix(predictions: Sequence[PredictionRecord]) -> np.ndarray | None:
    classes: list[str] = sorted(
        {str(k) for p in predictions for k in (p.output.get("probabilities") or {})}
    )
    if not classes:
        return None
    out = np.zeros((len(predictions), len(classes)))
    index = {c: i for i, c in enumerate(classes)}
    for row, p in enumerate(predictions):
        for k, v in (p.output.get("probabilities") or {}).items():
            out[row, index[str(k)]] = float(v)
    return out


def feature_matrix(
    pool: Sequence[PredictionRecord], labelled: Sequence[PredictionRecord]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    frame = pd.DataFrame([dict(p.inputs or {}) for p in [*pool, *labelled]])
    numeric = frame.select_dtypes("number")
    if numeric.shape[1] == 0:
        return None, None
    numeric = numeric.fillna(numeric.median()).fillna(0.0)
    values = numeric.to_numpy(float)
    return values[: len(pool)], (values[len(pool) :] if labelled else None)


class ActiveLearningService:
    def __init__(
        self,
        queue: LabelQueue,
        analytics: FeedbackAnalytics,
        feedback: FeedbackService,
        *,
        lease_s: float,
    ) -> None:
        self.queue = queue
        self.analytics = analytics
        self.feedback = feedback
        self.lease = timedelta(seconds=lease_s)

    def select(
        self,
        model: str,
        strategy: str,
        budget: int,
        *,
        since: datetime | None = None,
        pool_limit: int = 50_000,
        mix: Mapping[str, float] | None = None,
        seed: int = 0,
    ) -> dict[str, Any]:
        from learnloop.loop.active_learning import select

        self.feedback.flush_ledger()
        pool = self.analytics.unlabelled_predictions(model, since=since, limit=pool_limit)
        if not pool:
            return {"model": model, "strategy": strategy, "pool": 0, "tasks": []}
        probabilities = probability_matrix(pool)
        features = labelled_features = None
        uses_features = strategy in NEEDS_FEATURES or any(k == "diversity" for k in (mix or {}))
        if uses_features:
            labelled, _ = self.analytics.labelled_predictions(model, limit=5_000)
            features, labelled_features = feature_matrix(pool, labelled)
        if probabilities is None and strategy not in ("diversity", "random"):
            raise InvalidInput(
                "strategy needs class probabilities",
                [Issue("strategy", f"{model!r} outputs carry no probabilities; use diversity")],
            )
        try:
            chosen = select(
                strategy,  # type: ignore[arg-type]
                budget,
                probabilities=probabilities,
                features=features,
                labelled_features=labelled_features,
                seed=seed,
                mix=mix,
            )
        except ValueError as e:
            raise InvalidInput("cannot select", [Issue("strategy", str(e))]) from e
        # diversity's first pick with nothing labelled scores +inf: store a finite stand-in
        items = [
            (pool[i].id, pool[i].subject_id, float(score) if np.isfinite(score) else 1e12)
            for i, score in zip(chosen.indices.tolist(), chosen.scores.tolist(), strict=True)
        ]
        tasks = self.queue.add(model, strategy, items)
        return {"model": model, "strategy": strategy, "pool": len(pool), "tasks": tasks}

    def assign(self, model: str, assignee: str, n: int) -> list[dict[str, Any]]:
        return self.queue.claim(model, assignee, n, self.lease)

    def label(self, task_id: str, label: Any, labeller: str) -> dict[str, Any]:
        task = self.queue.get(task_id)
        if task["status"] == "labelled":
            self.queue.complete(task_id, labeller, "")  # raises Conflict with who labelled it
        event = FeedbackIn(
            type="label",
            value=label,
            prediction_id=task["prediction_id"],
            subject_id=task["subject_id"],
            model=task["model"],
            idempotency_key=f"label-task:{task_id}",
            attributes={"labeller": labeller, "task": task_id},
        )
        ack = self.feedback.ingest([event])[0]
        return {**self.queue.complete(task_id, labeller, ack.id), "duplicate": ack.duplicate}

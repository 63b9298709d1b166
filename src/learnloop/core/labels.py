"""Labelled examples: the prediction ledger joined with feedback by ``prediction_id``.

Feedback may arrive long after its prediction (late labels) or even before the prediction's
ledger row is flushed; the join is done when it is asked for, so a late label simply shows up
the next time. Per prediction, the events reduce to one example:

* ``label`` — the newest ``label`` or ``correction`` event wins (a correction's value may be
  the corrected output object: its ``prediction``/``label``/``value`` field is the label);
  otherwise a thumbs-up confirms the predicted value; a thumbs-down on a binary classifier
  gives the other class; otherwise there is no label.
* ``correct`` — label equals prediction (compared as strings), or the thumbs verdict.
* ``negative`` — wrong, thumbs down, or a rating of 2 or less: what error-pattern mining uses.

:class:`FeedbackOutcomes` turns the same reduction into the outcome per prediction that A/B
results need (``correct`` as 1/0 first, then thumbs, rating, completion, click, dwell).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from learnloop.core.feedback import FeedbackRecord
from learnloop.core.ledger import PredictionRecord

OUTCOME_ORDER = ("correct", "thumbs", "rating", "completion", "click", "dwell_ms")


def predicted_value(output: Mapping[str, Any]) -> Any:
    for key in ("prediction", "label", "value"):
        if key in output:
            return output[key]
    return None


def confidence_of(output: Mapping[str, Any]) -> float | None:
    """Top-class probability for classifiers; an explicit ``confidence``/``score`` otherwise."""
    probabilities = output.get("probabilities")
    if isinstance(probabilities, Mapping) and probabilities:
        return float(max(probabilities.values()))
    for key in ("confidence", "score"):
        value = output.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _label_from_correction(value: Any) -> Any:
    if isinstance(value, Mapping):
        for key in ("prediction", "label", "value"):
            if key in value:
                return value[key]
    return value


def _other_class(output: Mapping[str, Any], predicted: Any) -> Any:
    probabilities = output.get("probabilities")
    if not isinstance(probabilities, Mapping) or len(probabilities) != 2:
        return None
    others = [k for k in probabilities if str(k) != str(predicted)]
    if len(others) != 1:
        return None
    other: Any = others[0]
    if isinstance(predicted, bool):
        return other.lower() in ("true", "1")
    if isinstance(predicted, int):
        try:
            return int(other)
        except ValueError:
            return other
    return other


@dataclass(frozen=True)
class LabelledExample:
    prediction: PredictionRecord
    predicted: Any
    confidence: float | None
    label: Any
    label_source: str | None
    label_at: datetime | None
    correct: bool | None
    negative: bool
    outcomes: Mapping[str, float]
    events: int


def reduce_events(
    prediction: PredictionRecord, events: Sequence[FeedbackRecord]
) -> LabelledExample:
    """One example from a prediction and its feedback events (any order)."""
    ordered = sorted(events, key=lambda e: (e.client_ts, e.received_at, e.id))
    predicted = predicted_value(prediction.output)
    label: Any = None
    source: str | None = None
    label_at: datetime | None = None
    thumbs: float | None = None
    latest: dict[str, float] = {}
    for e in ordered:
        if e.type in ("label", "correction"):
            label = e.payload if e.type == "label" else _label_from_correction(e.payload)
            source, label_at = e.type, e.received_at
        elif e.type == "thumbs" and e.value is not None:
            thumbs = e.value
            latest["thumbs"] = e.value
        elif e.value is not None:
            latest[e.type if e.type != "signal" else f"signal:{e.name}"] = e.value
    if source is None and thumbs is not None:
        last_thumbs = next(e for e in reversed(ordered) if e.type == "thumbs")
        if thumbs == 1.0:
            label, source = predicted, "thumbs"
        else:
            label = _other_class(prediction.output, predicted)
            source = "thumbs" if label is not None else None
        label_at = last_thumbs.received_at if source else None
    correct: bool | None = None
    if source in ("label", "correction") and predicted is not None:
        correct = str(label) == str(predicted)
    elif thumbs is not None:
        correct = thumbs == 1.0
    if correct is not None:
        latest["correct"] = 1.0 if correct else 0.0
    rating = latest.get("rating")
    negative = correct is False or (rating is not None and rating <= 2)
    return LabelledExample(
        prediction=prediction,
        predicted=predicted,
        confidence=confidence_of(prediction.output),
        label=label,
        label_source=source,
        label_at=label_at,
        correct=correct,
        negative=negative,
        outcomes=latest,
        events=len(ordered),
    )


def join(
    predictions: Iterable[PredictionRecord], events: Iterable[FeedbackRecord]
) -> list[LabelledExample]:
    """Every prediction that has at least one feedback event, reduced to an example."""
    by_prediction: dict[str, list[FeedbackRecord]] = {}
    for e in events:
        if e.prediction_id is not None:
            by_prediction.setdefault(e.prediction_id, []).append(e)
    return [reduce_events(p, by_prediction[p.id]) for p in predictions if p.id in by_prediction]


class FeedbackOutcomes:
    """An :class:`~learnloop.core.experiments.OutcomeSource` over the feedback ledger.

    ``kind`` picks the outcome: ``auto`` (the first of :data:`OUTCOME_ORDER` a prediction has),
    or one of them (``correct``, ``thumbs``, ``rating``, …, ``signal:<name>``)."""

    def __init__(
        self,
        predictions: Callable[[Sequence[str]], Sequence[PredictionRecord]],
        events: Callable[[Sequence[str]], Sequence[FeedbackRecord]],
        kind: str = "auto",
    ) -> None:
        self._predictions = predictions
        self._events = events
        self.kind = kind

    def outcomes(self, prediction_ids: Sequence[str]) -> Mapping[str, float]:
        events = self._events(prediction_ids)
        if not events:
            return {}
        with_feedback = {e.prediction_id for e in events if e.prediction_id}
        predictions = self._predictions([i for i in prediction_ids if i in with_feedback])
        out: dict[str, float] = {}
        for example in join(predictions, events):
            value = self._pick(example.outcomes)
            if value is not None:
                out[example.prediction.id] = value
        return out

    def _pick(self, outcomes: Mapping[str, float]) -> float | None:
        if self.kind != "auto":
            return outcomes.get(self.kind)
        return next((outcomes[k] for k in OUTCOME_ORDER if k in outcomes), None)

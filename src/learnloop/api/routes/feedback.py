"""Feedback: ingest single events and batches (acknowledged after a durable commit), list them,
their metrics, and the labelled examples (ledger ⋈ feedback)."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from learnloop.api.security import Ingester, Reader, container_of
from learnloop.core.auth import Principal
from learnloop.core.errors import InvalidInput, Issue, NotFound
from learnloop.core.feedback import FeedbackBatchIn, FeedbackIn, FeedbackRecord
from learnloop.core.identifiers import Duration, ModelName, ObjectId, SubjectId
from learnloop.core.labels import LabelledExample
from learnloop.core.times import Timestamp

router = APIRouter(prefix="/v1/feedback", tags=["feedback"])

DURATION = re.compile(r"^(\d+)([smhdw])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION_S = 3650 * 86400


def parse_duration(text: str, field: str) -> timedelta:
    m = DURATION.match(text.strip())
    if not m:
        raise InvalidInput("bad duration", [Issue(field, "use e.g. 90s, 15m, 1h, 7d, 2w")])
    seconds = int(m.group(1)) * UNITS[m.group(2)]
    if seconds <= 0:
        raise InvalidInput("bad duration", [Issue(field, "must be positive")])
    if seconds > MAX_DURATION_S:
        raise InvalidInput("bad duration", [Issue(field, "at most 10 years (3650d)")])
    return timedelta(seconds=seconds)


@router.post(
    "",
    status_code=201,
    responses={200: {"model": dict[str, Any], "description": "A duplicate, not stored again."}},
)
async def send_feedback(
    event: FeedbackIn, request: Request, response: Response, principal: Principal = Ingester
) -> dict[str, Any]:
    """One event. 201 once it is durably stored; 200 with ``duplicate: true`` when its
    idempotency key was stored before (nothing is stored twice)."""
    service = container_of(request).feedback
    ack = (await asyncio.wrap_future(service.submit([event])))[0]
    if ack.duplicate:
        response.status_code = 200
    return {"id": ack.id, "duplicate": ack.duplicate, "orphan": ack.orphan}


@router.post("/batch", status_code=201)
async def send_batch(
    batch: FeedbackBatchIn, request: Request, principal: Principal = Ingester
) -> dict[str, Any]:
    """Up to 10,000 events, validated as a whole: one bad event rejects the batch (422 lists
    ``events.<index>.<field>`` for every bad one) and nothing is stored; a valid batch is stored
    in one transaction. Duplicates (by idempotency key) are acknowledged, not stored again;
    events whose ``prediction_id`` is not in the ledger are stored and listed as orphans."""
    service = container_of(request).feedback
    acks = await asyncio.wrap_future(service.submit(batch.events))
    duplicates = [i for i, a in enumerate(acks) if a.duplicate]
    orphans = [i for i, a in enumerate(acks) if a.orphan]
    return {
        "accepted": len(acks) - len(duplicates),
        "duplicates": len(duplicates),
        "orphans": len(orphans),
        "ids": [a.id for a in acks],
        "duplicate_indices": duplicates,
        "orphan_indices": orphans,
    }


@router.get("")
def list_feedback(
    request: Request,
    prediction_id: ObjectId | None = None,
    subject_id: SubjectId | None = None,
    model: ModelName | None = None,
    since: Timestamp | None = None,
    limit: int = Query(100, ge=1, le=10_000),
    principal: Principal = Reader,
) -> list[dict[str, Any]]:
    """Stored events, newest first."""
    events = container_of(request).feedback.store.list(
        prediction_id=prediction_id,
        subject_id=subject_id,
        model=model,
        since=since,
        limit=limit,
    )
    return [event_json(e) for e in events]


@router.get("/metrics")
def feedback_metrics(
    request: Request,
    model: ModelName | None = None,
    window: Annotated[
        Duration, Query(description="Length of the window ending at `until` (1h, 7d…).")
    ] = "24h",
    since: Timestamp | None = Query(None, description="Window start (overrides `window`)."),
    until: Timestamp | None = Query(None, description="Window end (default: now)."),
    bucket: Annotated[Duration, Query(description="Width of the time-series buckets.")] = "1h",
    principal: Principal = Reader,
) -> dict[str, Any]:
    """Counts per type, rates (feedback, thumbs-up, click-through, completion), the rating
    distribution and mean dwell — per model/version/arm — plus orphans and a time series."""
    span = parse_duration(window, "window")
    width = parse_duration(bucket, "bucket")
    if since is not None and until is not None and since >= until:
        raise InvalidInput("bad window", [Issue("since", "must be before until")])
    return container_of(request).feedback.metrics(
        model=model,
        since=since,
        until=until,
        window=span,
        bucket_s=int(width.total_seconds()),
    )


@router.get("/labelled")
def labelled_examples(
    request: Request,
    model: ModelName,
    since: Timestamp | None = Query(None, description="Predictions made from this time on."),
    until: Timestamp | None = Query(None, description="Predictions made before this time."),
    limit: int = Query(10_000, ge=1, le=1_000_000),
    inputs: bool = Query(True, description="Include the prediction inputs."),
    principal: Principal = Reader,
) -> dict[str, Any]:
    """Predictions of ``model`` joined with their feedback, one example each (late labels are
    picked up whenever they arrive)."""
    examples = container_of(request).feedback.labelled(model, since=since, until=until, limit=limit)
    rows = [example_json(e, inputs=inputs) for e in examples]
    return {
        "model": model,
        "examples": len(rows),
        "labelled": sum(1 for e in examples if e.label_source is not None),
        "rows": rows,
    }


def example_json(ex: LabelledExample, *, inputs: bool) -> dict[str, Any]:
    p = ex.prediction
    row: dict[str, Any] = {
        "prediction_id": p.id,
        "subject_id": p.subject_id,
        "model": p.model,
        "version": p.version,
        "arm": p.arm,
        "predicted_at": p.created_at.isoformat(),
        "predicted": ex.predicted,
        "confidence": ex.confidence,
        "label": ex.label,
        "label_source": ex.label_source,
        "label_at": ex.label_at.isoformat() if ex.label_at else None,
        "correct": ex.correct,
        "negative": ex.negative,
        "outcomes": dict(ex.outcomes),
    }
    if inputs:
        row["inputs"] = dict(p.inputs or {})
    return row


@router.get("/{event_id}")
def get_feedback(
    event_id: ObjectId, request: Request, principal: Principal = Reader
) -> dict[str, Any]:
    event = container_of(request).feedback.store.get(event_id)
    if event is None:
        raise NotFound("feedback event", event_id)
    return event_json(event)


def event_json(e: FeedbackRecord) -> dict[str, Any]:
    return {
        "id": e.id,
        "type": e.type,
        "name": e.name,
        "value": e.payload if e.value is None else e.value,
        "prediction_id": e.prediction_id,
        "subject_id": e.subject_id,
        "model": e.model,
        "timestamp": e.client_ts.isoformat(),
        "received_at": e.received_at.isoformat(),
        "idempotency_key": None if e.idem_key == e.id else e.idem_key,
        "text": e.text,
        "attributes": e.attributes,
    }

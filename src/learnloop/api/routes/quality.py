"""Prediction quality from the loop: confidence over time (with alerts), error patterns, and
the alerts list."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from learnloop.api.routes.feedback import parse_duration
from learnloop.api.security import Reader, Writer, container_of
from learnloop.core.auth import Principal
from learnloop.core.identifiers import Duration, ModelName, Text
from learnloop.core.times import Timestamp
from learnloop.loop.quality import confidence_report, error_patterns

router = APIRouter(tags=["quality"])


def _report(
    request: Request, name: str, window: str, bucket: str, reference_buckets: int, limit: int
) -> dict[str, Any]:
    c = container_of(request)
    c.registry.get_model(name)
    if c.ledger is not None:
        c.ledger.flush(5)
    since = datetime.now(UTC) - parse_duration(window, "window")
    records = c.predictions.list(name, limit=limit, since=since)
    report = confidence_report(
        records,
        bucket_s=int(parse_duration(bucket, "bucket").total_seconds()),
        reference_buckets=reference_buckets,
        psi_alert=c.settings.feedback.confidence_psi_alert,
    )
    return {"model": name, "window": window, **report}


@router.get("/v1/models/{name}/confidence")
def confidence(
    name: ModelName,
    request: Request,
    window: Annotated[Duration, Query(description="How far back (e.g. 24h, 7d).")] = "24h",
    bucket: Annotated[Duration, Query(description="Bucket width.")] = "1h",
    reference_buckets: int = Query(
        1, ge=1, le=10_000, description="Leading buckets that form the reference."
    ),
    limit: int = Query(200_000, ge=1, le=2_000_000),
    principal: Principal = Reader,
) -> dict[str, Any]:
    """The distribution of prediction confidence per time bucket, each bucket's PSI against
    the reference and a KS test of the latest; ``alert`` when it shifted."""
    return _report(request, name, window, bucket, reference_buckets, limit)


@router.post("/v1/models/{name}/confidence/check")
def check_confidence(
    name: ModelName,
    request: Request,
    window: Duration = "24h",
    bucket: Duration = "1h",
    reference_buckets: int = Query(1, ge=1, le=10_000),
    principal: Principal = Writer,
) -> dict[str, Any]:
    """The same report; a shift is stored as an alert (once per model and bucket) — what a
    scheduler calls."""
    report = _report(request, name, window, bucket, reference_buckets, 200_000)
    report["alert_raised"] = False
    if report["alert"]:
        latest = report["latest"]
        report["alert_raised"] = container_of(request).alerts.raise_alert(
            key=f"confidence:{name}:{latest['start']}",
            kind="confidence_shift",
            model=name,
            severity="warning",
            message=f"confidence of {name} shifted: PSI {latest['psi']:.3f} "
            f"(mean {latest['mean_shift']:+.3f}) in the bucket from {latest['start']}",
            details=latest,
        )
    return report


@router.get("/v1/models/{name}/error-patterns")
def patterns(
    name: ModelName,
    request: Request,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    top: int = Query(5, ge=1, le=50),
    min_support: int = Query(5, ge=1, le=1_000_000_000),
    limit: int = Query(100_000, ge=1, le=1_000_000),
    principal: Principal = Reader,
) -> dict[str, Any]:
    """Recurring patterns among wrong or negatively rated predictions: input rules with
    counts, error rate, lift and examples; clusters of free-text inputs; top confusions."""
    c = container_of(request)
    c.registry.get_model(name)
    examples = c.feedback.labelled(name, since=since, until=until, limit=limit)
    return {"model": name, **error_patterns(examples, top=top, min_support=min_support)}


@router.get("/v1/alerts")
def alerts(
    request: Request,
    model: ModelName | None = None,
    kind: Text | None = None,
    limit: int = Query(100, ge=1, le=10_000),
    principal: Principal = Reader,
) -> list[dict[str, Any]]:
    return container_of(request).alerts.list(model, kind, limit)

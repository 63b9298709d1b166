"""Analytics: learning curves, versions side by side, segment performance, retraining ROI."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from learnloop.api.security import Reader, container_of
from learnloop.core.auth import Principal
from learnloop.core.identifiers import ModelName, Text

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])


def _versions(text: str | None) -> list[str] | None:
    return [v.strip() for v in text.split(",") if v.strip()] if text else None


@router.get("/{model}/learning-curves")
def learning_curves(
    model: ModelName,
    request: Request,
    versions: str | None = Query(
        None, max_length=1024, description="Comma-separated; default: all."
    ),
    principal: Principal = Reader,
) -> dict[str, Any]:
    return container_of(request).analytics.learning_curves(model, _versions(versions))


@router.get("/{model}/compare")
def compare(
    model: ModelName,
    request: Request,
    versions: str | None = Query(
        None, max_length=1024, description="Comma-separated; default: all."
    ),
    principal: Principal = Reader,
) -> dict[str, Any]:
    """Versions side by side: validation and online metrics, latency, size, training time."""
    return container_of(request).analytics.compare(model, _versions(versions))


@router.get("/{model}/segments")
def segments(
    model: ModelName,
    request: Request,
    by: Annotated[Text, Query(description="Input column to segment by.")],
    bins: int = Query(4, ge=2, le=20, description="Quantile bins of a numeric column."),
    principal: Principal = Reader,
) -> dict[str, Any]:
    return container_of(request).analytics.segments(model, by, bins=bins)


@router.get("/{model}/roi")
def roi(
    model: ModelName,
    request: Request,
    metric: Text = "roc_auc",
    value_per_point: float = Query(
        100.0, ge=0, le=1e12, description="Value of +0.01 of the metric."
    ),
    cost_per_hour: float = Query(1.0, ge=0, le=1e12, description="Cost of one hour of training."),
    principal: Principal = Reader,
) -> dict[str, Any]:
    """Per version against the previous one: metric gain, its value, compute cost, ratio."""
    return container_of(request).analytics.roi(
        model, metric=metric, value_per_point=value_per_point, cost_per_hour=cost_per_hour
    )

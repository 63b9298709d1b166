"""A/B experiment results per model, from the ledger (and outcomes, when a source exists)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from learnloop.api.security import Reader, container_of
from learnloop.core.auth import Principal
from learnloop.core.experiments import experiment_results
from learnloop.core.identifiers import ModelName, Text
from learnloop.core.times import Timestamp

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])


@router.get("/{model}")
def results(
    model: ModelName,
    request: Request,
    since: Timestamp | None = Query(None, description="Only predictions from this time on."),
    control: Text | None = Query(None, description="Control arm (default: first serving arm)."),
    alpha: float = Query(0.05, gt=0, lt=0.5),
    limit: int = Query(200_000, ge=1, le=2_000_000, description="Newest predictions read."),
    principal: Principal = Reader,
) -> dict[str, Any]:
    """Per arm: predictions, versions, fallbacks, latency, outcome mean; each arm against the
    control with a fixed-horizon test and an always-valid sequential p-value; the winner."""
    c = container_of(request)
    deployment = c.deployments.get(model)
    if c.ledger is not None:
        c.ledger.flush(5)
    records = c.predictions.list(model, limit=limit, since=since)
    source = c.outcomes
    outcomes = source.outcomes([r.id for r in records]) if source is not None else {}
    first_arm = deployment.spec.effective_weights()[0][0].name
    body = experiment_results(records, outcomes, control=control or first_arm, alpha=alpha)
    body.update(
        model=model,
        deployment_revision=deployment.revision,
        mode=deployment.spec.mode,
        outcome_source=type(source).__name__ if source is not None else None,
    )
    return body

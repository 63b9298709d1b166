"""Active learning: select predictions worth labelling, hand them to labellers, take labels."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import ConfigDict, Field

from learnloop.api.security import Ingester, Reader, Writer, container_of
from learnloop.core.auth import Principal
from learnloop.core.identifiers import ModelName, ObjectId, Seed
from learnloop.core.inputs import ClientModel
from learnloop.core.limits import JsonValue
from learnloop.core.times import Timestamp

router = APIRouter(prefix="/v1/active-learning", tags=["active-learning"])

Strategy = Literal["uncertainty", "margin", "entropy", "diversity", "mix", "random"]


class SelectIn(ClientModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelName
    strategy: Strategy = "uncertainty"
    budget: int = Field(..., ge=1, le=10_000, description="How many predictions to queue.")
    since: Timestamp | None = Field(None, description="Pool: predictions from this time on.")
    pool_limit: int = Field(50_000, ge=1, le=1_000_000, description="Newest predictions read.")
    mix: dict[Strategy, Annotated[float, Field(ge=0, le=1)]] | None = Field(
        None,
        max_length=6,
        description="Budget split across strategies, e.g. {'margin': 0.7, 'random': 0.3}.",
    )
    seed: Seed = 0


class AssignIn(ClientModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelName
    assignee: str = Field(..., min_length=1, max_length=128)
    n: int = Field(10, ge=1, le=1_000)


class LabelIn(ClientModel):
    model_config = ConfigDict(extra="forbid")

    task_id: ObjectId
    label: JsonValue = Field(..., description="The true label of the task's prediction.")
    labeller: str | None = Field(None, max_length=128, description="Default: the API key name.")


@router.post("/select", status_code=201)
def select(body: SelectIn, request: Request, principal: Principal = Writer) -> dict[str, Any]:
    """Score the unlabelled pool with the strategy and queue the best ``budget`` items."""
    return container_of(request).active_learning.select(
        body.model,
        body.strategy,
        body.budget,
        since=body.since,
        pool_limit=body.pool_limit,
        mix=body.mix,
        seed=body.seed,
    )


@router.post("/assign")
def assign(body: AssignIn, request: Request, principal: Principal = Ingester) -> dict[str, Any]:
    """Claim up to ``n`` open tasks (or expired ones) for a labeller, best first, with a lease
    of ``feedback.label_lease_s``."""
    c = container_of(request)
    return {"tasks": c.active_learning.assign(body.model, body.assignee, body.n)}


@router.post("/label")
def label(body: LabelIn, request: Request, principal: Principal = Ingester) -> dict[str, Any]:
    """Record a label for a task: stored as a ``label`` feedback event (durably, once per
    task), and the task is closed. 409 if the task was labelled already."""
    c = container_of(request)
    return c.active_learning.label(body.task_id, body.label, body.labeller or principal.name)


@router.get("/tasks")
def tasks(
    request: Request,
    model: ModelName | None = None,
    status: Literal["open", "assigned", "expired", "labelled"] | None = None,
    limit: int = Query(100, ge=1, le=10_000),
    principal: Principal = Reader,
) -> list[dict[str, Any]]:
    return container_of(request).active_learning.queue.list(model, status, limit)


@router.get("/stats")
def stats(
    request: Request, model: ModelName | None = None, principal: Principal = Reader
) -> dict[str, Any]:
    """Tasks per status and strategy, labels per labeller, median time to label."""
    return container_of(request).active_learning.queue.stats(model)

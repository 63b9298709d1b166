"""Deployments (create/change, history, promote, rollback), the ledger and the shadow report."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import ConfigDict, Field

from learnloop.api.security import Reader, Writer, container_of
from learnloop.core.auth import Principal
from learnloop.core.deployments import Deployment, DeploymentSpec
from learnloop.core.errors import NotFound
from learnloop.core.identifiers import ModelName, ObjectId
from learnloop.core.inputs import ClientModel
from learnloop.core.shadow import shadow_report

router = APIRouter(tags=["deployments"])


class ApplyDeploymentRequest(DeploymentSpec):
    reason: str = Field("", max_length=1024)
    expected_revision: int | None = Field(
        None,
        ge=0,
        le=2**31 - 1,
        description="Refuse (409) if the deployment changed since this revision.",
    )


class ReasonRequest(ClientModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=1024)


def _body(d: Deployment) -> dict[str, Any]:
    return d.model_dump(mode="json")


@router.get("/v1/models/{name}/deployment")
def get_deployment(
    name: ModelName, request: Request, principal: Principal = Reader
) -> dict[str, Any]:
    """The deployment in force (revision 0 is the implicit `single` on alias `champion`)."""
    return _body(container_of(request).deployments.get(name))


@router.put("/v1/models/{name}/deployment")
def apply_deployment(
    name: ModelName, body: ApplyDeploymentRequest, request: Request, principal: Principal = Writer
) -> dict[str, Any]:
    """Store a new revision. Invalid specs (weights, missing arms/versions) get 422 and the
    deployment in force keeps serving."""
    spec = DeploymentSpec.model_validate(body.model_dump(exclude={"reason", "expected_revision"}))
    deployment = container_of(request).deployments.apply(
        name,
        spec,
        actor=principal.name,
        reason=body.reason,
        expected_revision=body.expected_revision,
    )
    return _body(deployment)


@router.get("/v1/models/{name}/deployment/history")
def deployment_history(
    name: ModelName, request: Request, principal: Principal = Reader
) -> list[dict[str, Any]]:
    return [_body(d) for d in container_of(request).deployments.history(name)]


@router.post("/v1/models/{name}/deployment/promote")
def promote_deployment(
    name: ModelName,
    request: Request,
    body: ReasonRequest | None = None,
    principal: Principal = Writer,
) -> dict[str, Any]:
    """Next canary step, blue-green switch, or shadow → serving."""
    reason = body.reason if body else ""
    return _body(
        container_of(request).deployments.promote(name, actor=principal.name, reason=reason)
    )


@router.post("/v1/models/{name}/deployment/rollback")
def rollback_deployment(
    name: ModelName,
    request: Request,
    body: ReasonRequest | None = None,
    principal: Principal = Writer,
) -> dict[str, Any]:
    """Re-apply the previous revision (e.g. switch a blue-green back)."""
    reason = body.reason if body else ""
    return _body(
        container_of(request).deployments.rollback(name, actor=principal.name, reason=reason)
    )


@router.get("/v1/models/{name}/shadow-report")
def get_shadow_report(
    name: ModelName,
    request: Request,
    limit: int = Query(10_000, ge=1, le=100_000),
    principal: Principal = Reader,
) -> dict[str, Any]:
    c = container_of(request)
    c.registry.get_model(name)
    if c.ledger is not None:
        c.ledger.flush(5)
    return {"model": name, **shadow_report(c.predictions.shadow_pairs(name, limit))}


@router.get("/v1/models/{name}/predictions")
def list_predictions(
    name: ModelName,
    request: Request,
    limit: int = Query(100, ge=1, le=10_000),
    shadow: bool = False,
    principal: Principal = Reader,
) -> list[dict[str, Any]]:
    c = container_of(request)
    c.registry.get_model(name)
    return [r.__dict__ for r in c.predictions.list(name, limit=limit, shadow=shadow)]


@router.get("/v1/predictions/{prediction_id}")
def get_prediction(
    prediction_id: ObjectId, request: Request, principal: Principal = Reader
) -> dict[str, Any]:
    c = container_of(request)
    record = c.predictions.get(prediction_id)
    if record is None and c.ledger is not None and c.ledger.flush(2):
        record = c.predictions.get(prediction_id)
    if record is None:
        raise NotFound("prediction", prediction_id)
    return record.__dict__

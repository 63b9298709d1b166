"""Models, versions, aliases (set, history, rollback) and champion prediction."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query, Request

from learnloop.api.schemas import (
    AliasAtResponse,
    AliasEventResponse,
    CreateModelRequest,
    ModelResponse,
    PredictRequest,
    PredictResponse,
    RollbackRequest,
    SetAliasRequest,
    VersionResponse,
)
from learnloop.api.security import Predictor, Reader, Writer, container_of
from learnloop.core.auth import Principal
from learnloop.core.errors import NotFound
from learnloop.core.identifiers import AliasName, ModelName, Version
from learnloop.core.times import Timestamp

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("")
def list_models(request: Request, principal: Principal = Reader) -> list[ModelResponse]:
    return [ModelResponse.of(m) for m in container_of(request).registry.list_models()]


@router.post("", status_code=201)
def create_model(
    body: CreateModelRequest, request: Request, principal: Principal = Writer
) -> ModelResponse:
    c = container_of(request)
    c.families.get(body.family)
    record = c.registry.ensure_model(
        body.name, body.family, actor=principal.name, description=body.description
    )
    return ModelResponse.of(record)


@router.get("/{name}")
def get_model(name: ModelName, request: Request, principal: Principal = Reader) -> ModelResponse:
    return ModelResponse.of(container_of(request).registry.get_model(name))


@router.get("/{name}/versions")
def list_versions(
    name: ModelName, request: Request, principal: Principal = Reader
) -> list[VersionResponse]:
    return [VersionResponse.of(v) for v in container_of(request).registry.list_versions(name)]


@router.get("/{name}/versions/{version}")
def get_version(
    name: ModelName, version: Version, request: Request, principal: Principal = Reader
) -> VersionResponse:
    return VersionResponse.of(container_of(request).registry.get_version(name, version))


@router.get("/{name}/aliases/history")
def alias_history(
    name: ModelName,
    request: Request,
    alias: AliasName | None = Query(None, description="Only this alias."),
    principal: Principal = Reader,
) -> list[AliasEventResponse]:
    events = container_of(request).registry.alias_history(name, alias)
    return [AliasEventResponse.of(e) for e in events]


@router.get("/{name}/aliases/{alias}")
def alias_at(
    name: ModelName,
    alias: AliasName,
    request: Request,
    at: Timestamp | None = Query(None, description="Point in time; default now."),
    principal: Principal = Reader,
) -> AliasAtResponse:
    """Which version ``alias`` points to now, or pointed to at time ``at`` (from the alias
    history). 404 when the model does not exist, when the alias is not set now, or (with
    ``at``) when the alias was not set at that time."""
    registry = container_of(request).registry
    if at is None:
        version = registry.resolve(name, alias)  # NotFound: the model, else model@alias
        return AliasAtResponse(
            model=name, alias=alias, at=datetime.now().astimezone(), version=version
        )
    registry.get_model(name)
    version = registry.version_at(name, alias, at)
    if version is None:
        where = f"{name}@{alias}"
        raise NotFound("alias", where, f"alias {where!r} was not set at {at.isoformat()}")
    return AliasAtResponse(model=name, alias=alias, at=at, version=version)


@router.put("/{name}/aliases/{alias}")
def set_alias(
    name: ModelName,
    alias: AliasName,
    body: SetAliasRequest,
    request: Request,
    principal: Principal = Writer,
) -> AliasEventResponse:
    event = container_of(request).registry.set_alias(
        name, alias, body.version, actor=principal.name, reason=body.reason
    )
    return AliasEventResponse.of(event)


@router.delete("/{name}/aliases/{alias}")
def delete_alias(
    name: ModelName, alias: AliasName, request: Request, principal: Principal = Writer
) -> AliasEventResponse:
    event = container_of(request).registry.delete_alias(name, alias, actor=principal.name)
    return AliasEventResponse.of(event)


@router.post("/{name}/aliases/{alias}/rollback")
def rollback(
    name: ModelName,
    alias: AliasName,
    request: Request,
    body: RollbackRequest | None = None,
    principal: Principal = Writer,
) -> AliasEventResponse:
    reason = body.reason if body else ""
    event = container_of(request).registry.rollback(
        name, alias, actor=principal.name, reason=reason
    )
    return AliasEventResponse.of(event)


@router.post("/{name}/predict")
def predict(
    name: ModelName, body: PredictRequest, request: Request, principal: Principal = Predictor
) -> PredictResponse:
    """Predict through the model's deployment (``champion`` when it has none)."""
    result = container_of(request).serving.predict(
        name, body.inputs, subject_id=body.subject_id, alias=body.alias, version=body.version
    )
    return PredictResponse(**result.__dict__)

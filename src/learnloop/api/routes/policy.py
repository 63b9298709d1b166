"""Policies per model, the engine's status and decisions, a manual tick, and the lineage."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from learnloop.api.security import Reader, Writer, container_of
from learnloop.core.auth import Principal
from learnloop.core.identifiers import ModelName
from learnloop.core.limits import json_object
from learnloop.loop.policy import lineage as build_lineage

router = APIRouter(prefix="/v1/models/{name}", tags=["policy"])


@router.put("/policy")
def put_policy(
    name: ModelName,
    body: Annotated[json_object(64), Body()],  # type: ignore[valid-type]
    request: Request,
    principal: Principal = Writer,
) -> dict[str, Any]:
    """Validate and store the model's policy (a new revision; JSON — or YAML converted)."""
    c = container_of(request)
    result = c.policy.set_policy(name, body, actor=principal.name)
    c.audit.append(principal.name, "policy.set", f"model:{name}", {"revision": result["revision"]})
    return result


@router.get("/policy")
def get_policy(name: ModelName, request: Request, principal: Principal = Reader) -> dict[str, Any]:
    """The policy in force, the loop's stage and state."""
    return container_of(request).policy.status(name)


@router.post("/policy/tick")
def tick(name: ModelName, request: Request, principal: Principal = Writer) -> dict[str, Any]:
    """Move the loop one step now (the server also ticks every ``policy.tick_s``)."""
    return container_of(request).policy.tick(name)


@router.get("/policy/events")
def events(
    name: ModelName, request: Request, principal: Principal = Reader
) -> list[dict[str, Any]]:
    """The engine's decisions with their reasons, oldest first."""
    return container_of(request).policy.store.events(name)


@router.get("/lineage")
def lineage(name: ModelName, request: Request, principal: Principal = Reader) -> dict[str, Any]:
    """data → run → version → rollout → outcome: one timeline of the model."""
    c = container_of(request)
    return build_lineage(name, c.registry, c.datasets, c.deployments, c.policy.store)

"""API keys and the audit log (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from learnloop.api.schemas import (
    AuditEventResponse,
    CreatedKeyResponse,
    CreateKeyRequest,
    KeyResponse,
)
from learnloop.api.security import Admin, container_of
from learnloop.core.auth import Principal
from learnloop.core.identifiers import ObjectId, Text

router = APIRouter(prefix="/v1", tags=["admin"])


@router.post("/keys", status_code=201)
def create_key(
    body: CreateKeyRequest, request: Request, principal: Principal = Admin
) -> CreatedKeyResponse:
    record, token = container_of(request).keys.create(body.role, body.name, actor=principal.name)
    return CreatedKeyResponse(**record.__dict__, key=token)


@router.get("/keys")
def list_keys(request: Request, principal: Principal = Admin) -> list[KeyResponse]:
    return [KeyResponse.of(k) for k in container_of(request).keys.list()]


@router.delete("/keys/{key_id}")
def revoke_key(key_id: ObjectId, request: Request, principal: Principal = Admin) -> KeyResponse:
    return KeyResponse.of(container_of(request).keys.revoke(key_id, actor=principal.name))


@router.get("/audit")
def audit(
    request: Request,
    target: Text | None = None,
    action: Text | None = None,
    limit: int = Query(100, ge=1, le=1000),
    principal: Principal = Admin,
) -> list[AuditEventResponse]:
    events = container_of(request).audit.list(target=target, action=action, limit=limit)
    return [AuditEventResponse.of(e) for e in events]

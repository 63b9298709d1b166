"""API-key authentication and role checks as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request

from learnloop.container import Container
from learnloop.core.auth import LOCAL_OPERATOR, Permission, Principal


def container_of(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def token_of(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("x-api-key")


async def authenticate(request: Request) -> Principal:
    """Async on purpose: verified keys come from an in-memory cache, so the check runs on the
    event loop instead of costing a thread hop per request."""
    container = container_of(request)
    if not container.settings.api.auth_enabled:
        return LOCAL_OPERATOR
    principal = container.keys.authenticate(token_of(request))
    request.state.principal = principal
    return principal


def require(permission: Permission) -> Callable[..., Principal]:
    """Dependency: the caller, who must hold ``permission``."""

    async def dependency(principal: Principal = Depends(authenticate)) -> Principal:
        principal.require(permission)
        return principal

    return dependency


Reader = Depends(require(Permission.READ))
Predictor = Depends(require(Permission.PREDICT))
Ingester = Depends(require(Permission.INGEST))
Writer = Depends(require(Permission.WRITE))
Admin = Depends(require(Permission.ADMIN))

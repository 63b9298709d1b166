"""Health, readiness, metrics and the family catalog."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from learnloop import __version__
from learnloop.api.security import Reader, container_of
from learnloop.core.auth import Principal

router = APIRouter()


@router.get("/v1/health", tags=["system"])
def health() -> dict[str, str]:
    """Liveness: the process answers. Needs no key."""
    return {"status": "ok", "version": __version__}


_READY = {
    "type": "object",
    "properties": {"ready": {"type": "boolean"}, "checks": {"type": "object"}},
    "required": ["ready", "checks"],
}


@router.get(
    "/v1/ready",
    tags=["system"],
    responses={
        200: {"content": {"application/json": {"schema": _READY}}},
        503: {
            "description": "Not ready (or a store failed while checking the key).",
            "content": {
                "application/json": {
                    "schema": {"anyOf": [_READY, {"$ref": "#/components/schemas/ErrorBody"}]}
                }
            },
        },
    },
)
def ready(request: Request, principal: Principal = Reader) -> JSONResponse:
    """Readiness: the database answers and is migrated; workers are alive."""
    c = container_of(request)
    checks: dict[str, Any] = {}
    try:
        checks["database"] = "ok" if c.db.is_current() else "not migrated"
    except Exception as e:  # any backend failure means not ready
        checks["database"] = f"error: {type(e).__name__}"
    checks["workers_in_process"] = 0 if c.runner is None else c.runner.job_threads
    ok = checks["database"] == "ok"
    return JSONResponse({"ready": ok, "checks": checks}, 200 if ok else 503)


@router.get("/metrics", tags=["system"], include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text format."""
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/families", tags=["system"])
def families(request: Request, principal: Principal = Reader) -> list[dict[str, Any]]:
    """Installed model families with their parameter schema."""
    c = container_of(request)
    out = []
    for name in c.families.names():
        try:
            fam = c.families.get(name)
        except Exception as e:  # a family whose extra is missing is listed as unavailable
            out.append({"name": name, "available": False, "error": str(e)})
            continue
        out.append(
            {
                "name": name,
                "available": True,
                "description": fam.description,
                "params_schema": fam.Params.model_json_schema(),
            }
        )
    return out

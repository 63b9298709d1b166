"""The one table from learnloop errors to HTTP, and the error body every route returns.

Body: ``{"error": {"type": "...", "message": "...", "issues": [{"loc": "...", "message": "..."}]},
"request_id": "..."}``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from learnloop.core import errors as e
from learnloop.logs import request_id_var

log = logging.getLogger("learnloop.api")

STATUS: list[tuple[type[e.LearnloopError], int]] = [
    (e.NotFound, 404),
    (e.Conflict, 409),
    (e.InvalidInput, 422),
    (e.Unauthorized, 401),
    (e.Forbidden, 403),
    (e.MissingDependency, 501),
    (e.StorageError, 503),
    (e.TrainingError, 500),
    (e.LearnloopError, 500),
]


def status_of(error: e.LearnloopError) -> int:
    return next(code for cls, code in STATUS if isinstance(error, cls))


def error_body(kind: str, message: str, issues: list[dict[str, str]] | None = None) -> dict:
    return {
        "error": {"type": kind, "message": message, "issues": issues or []},
        "request_id": request_id_var.get(),
    }


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(e.LearnloopError)
    async def _learnloop(request: Request, exc: e.LearnloopError) -> JSONResponse:
        issues = [{"loc": i.loc, "message": i.message} for i in getattr(exc, "issues", ())]
        code = status_of(exc)
        if code >= 500:
            log.error("request failed", exc_info=exc)
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
        return JSONResponse(
            error_body(type(exc).__name__, exc.message, issues), code, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        issues = [
            {"loc": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
            for err in exc.errors()
        ]
        detail = "; ".join(f"{i['loc']}: {i['message']}" for i in issues)
        return JSONResponse(error_body("InvalidInput", f"invalid request: {detail}", issues), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "PayloadTooLarge" if exc.status_code == 413 else "HTTPError"
        return JSONResponse(error_body(kind, str(exc.detail)), exc.status_code)

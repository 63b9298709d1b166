"""The one table from learnloop errors to HTTP, and the error body every route returns.

Body: ``{"error": {"type": "...", "message": "...", "issues": [{"loc": "...", "message": "..."}]},
"request_id": "..."}``, described for the OpenAPI schema by :class:`ErrorBody`. A 405 carries
``Allow`` with every method the path answers.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection
from starlette.routing import get_route_path

from learnloop.api.redact import client_message, redact
from learnloop.core import errors as e
from learnloop.core.serving import ModelUnavailable
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
    (ModelUnavailable, 503),  # every version of the chain failed: an outage, not a bug
    (e.TrainingError, 500),
    (e.LearnloopError, 500),
]


class ErrorIssue(BaseModel):
    """One offending field."""

    loc: str = Field(description="Field path: `body.inputs.0.age`, `query.limit`, a column.")
    message: str


class ErrorDetail(BaseModel):
    type: str = Field(
        description="The error class: `NotFound`, `Conflict`, `InvalidInput`, `Unauthorized`, "
        "`Forbidden`, `MissingDependency`, `StorageError`, `PayloadTooLarge`, `HTTPError`, "
        "`InternalError`, …"
    )
    message: str
    issues: list[ErrorIssue] = Field(description="One entry per offending field (may be empty).")


class ErrorBody(BaseModel):
    """The body of every error answer of the API (the OIP v2 routes excepted)."""

    error: ErrorDetail
    request_id: str = Field(description="The request's `X-Request-ID`, also in the logs.")


class OipErrorBody(BaseModel):
    """The Open Inference Protocol's error body, answered by the ``/v2`` routes."""

    error: str


def status_of(error: e.LearnloopError) -> int:
    return next(code for cls, code in STATUS if isinstance(error, cls))


MAX_ISSUES = 100


def error_body(kind: str, message: str, issues: list[dict[str, str]] | None = None) -> dict:
    """The error body: server paths redacted, at most ``MAX_ISSUES`` issues and a message of at
    most ``MAX_MESSAGE_CHARS`` (a request with 10,000 bad rows gets a readable answer)."""
    issues = issues or []
    shown = [
        {"loc": i["loc"][:200], "message": redact(i["message"][:500]) or ""}
        for i in issues[:MAX_ISSUES]
    ]
    text = client_message(message, f"… ({len(issues)} issues in all)")
    if len(issues) > MAX_ISSUES:
        shown.append({"loc": "", "message": f"and {len(issues) - MAX_ISSUES} more issues"})
    return {
        "error": {"type": kind, "message": text, "issues": shown},
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
        if code == 503:
            headers = {"Retry-After": "1"}  # an outage of a store or of every version
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
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request)) or headers.get("Allow", "")
        return JSONResponse(error_body(kind, str(exc.detail)), exc.status_code, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """The methods the API documents for the request's path: those of the most specific
    routes that match it (``/aliases/history`` before ``/aliases/{alias}``). The router's own
    405 names only the methods of the first route that matched."""
    path = get_route_path(request.scope)
    matching = [
        r
        for r in flat_routes(request.app)
        if getattr(r, "path_regex", None) is not None and r.path_regex.match(path)
    ]
    if not matching:
        return []
    best = max(specificity(r) for r in matching)
    methods: set[str] = set()
    for route in matching:
        if specificity(route) == best:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def specificity(route: Any) -> tuple[int, ...]:
    """1 for each literal segment of the route's template, 0 for each parameter: of two
    templates matching one path, the greater is the one the API documents for it."""
    parts = str(getattr(route, "path", "")).strip("/").split("/")
    return tuple(0 if p.startswith("{") else 1 for p in parts)


async def route_rules(request: HTTPConnection) -> None:
    """Dependency of every route, for what a route's own parameters cannot say.

    * A request that reached a parameter route (``DELETE /v1/models/m/aliases/history``
      matched ``/aliases/{alias}``) while a more specific route owns its path answers 405 with
      that route's methods, as the schema describes, instead of acting on a thing named like
      the literal segment.
    * A query parameter the route does not take is a 422 naming it (``?limt=10`` is a typo, not
      something to ignore), as an unknown field of a body is.
    """
    route = request.scope.get("route")
    if request.scope["type"] != "http" or route is None:
        return  # WebSockets have one verb and authenticate with a query parameter
    rules: dict[int, tuple[list[Any], frozenset[str]]] = request.app.state.__dict__.setdefault(
        "route_rules", {}
    )
    found = rules.get(id(route))
    if found is None:
        found = rules[id(route)] = (_rivals(request.app, route), _query_names(route))
    rivals, names = found
    if rivals:
        path = get_route_path(request.scope)
        if any(other.path_regex.match(path) for other in rivals):
            raise StarletteHTTPException(405)
    if request.scope.get("query_string"):
        unknown = sorted({k for k in request.query_params if k not in names})
        if unknown:
            known = ", ".join(sorted(names)) or "none"
            raise e.InvalidInput(
                "unknown query parameter",
                [
                    e.Issue(f"query.{k}", f"not a parameter of this route (known: {known})")
                    for k in unknown
                ],
            )


def _rivals(app: FastAPI, route: Any) -> list[Any]:
    """The routes whose templates are more specific than ``route``'s for the same paths."""
    if "{" not in str(getattr(route, "path", "")):
        return []
    mine = specificity(route)
    return [
        other
        for other in flat_routes(app)
        if getattr(other, "path_regex", None) is not None
        and len(specificity(other)) == len(mine)
        and specificity(other) > mine
        and all(o >= m for o, m in zip(specificity(other), mine, strict=True))
    ]


def _query_names(route: Any) -> frozenset[str]:
    """The query parameters ``route`` declares, its dependencies' included."""
    names: set[str] = set()
    stack = [getattr(route, "dependant", None)]
    while stack:
        dependant = stack.pop()
        if dependant is None:
            continue
        names |= {p.alias for p in dependant.query_params}
        stack.extend(dependant.dependencies)
    return frozenset(names)


def flat_routes(app: FastAPI) -> list[Any]:
    """The app's routes with included routers opened up (each with its full path)."""
    try:  # recent FastAPI keeps an included router as one branch of the app's routes
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI copies the routes in, flat
        return list(app.routes)
    return list(iter_route_contexts(app.routes))

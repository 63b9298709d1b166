"""The OpenAPI description of the app, made to say what the server really answers, and the API
documentation pages (Swagger UI at ``/docs``, ReDoc at ``/redoc``) served from installed files,
so they work on a machine without internet.

FastAPI's own schema knows the routes, their parameters, bodies and success answers, but not
learnloop's error handling. :func:`install_openapi` completes it once per schema build by walking
the app's routes and their dependency trees (so routes that families add get the same), with
these rules:

- **Security.** An operation whose dependency tree contains :func:`~learnloop.api.security.
  authenticate` (every ``Reader``/``Predictor``/``Ingester``/``Writer``/``Admin``, through
  ``require(permission)``) lists the two security schemes (``Authorization: Bearer <key>`` and
  ``X-API-Key``) and declares **401** (with ``WWW-Authenticate``) and **403**. Public operations
  (health, readiness of the OIP routes) declare neither.
- **Stores.** An authenticated operation reads the key store before anything else, and its
  service resolves models, versions, families and stores, so it declares **404** (``NotFound``),
  **409** (``Conflict``), **501** (``MissingDependency``: a family or feature whose extra is not
  installed) and **503** (``StorageError``) — declared broadly, because a declared rare answer is
  better than an undeclared real one. A public operation with path parameters declares 404.
- **Input.** Every operation declares **422** (``InvalidInput``, a request that fails its
  schema, or a query parameter the operation does not take); an operation with a request body
  declares **413** (the request middleware refuses bodies over ``api.max_body_bytes``), and one
  whose body FastAPI parses declares **400** (a body it cannot read at all, such as JSON that is
  not UTF-8).
- **Bodies.** Every error answer above has the :class:`~learnloop.api.errors.ErrorBody` schema;
  FastAPI's ``HTTPValidationError`` (``{"detail": ...}``), which the server never sends, is
  gone. Routes of the Open Inference Protocol (``OipRoute``) answer errors in the protocol's
  body (:class:`~learnloop.api.errors.OipErrorBody`), and invalid input with **400**, not 422;
  their 413 is still the API's error body (the middleware answers it).
- **Headers.** Every answer carries ``X-Request-ID``.
- What a route declares itself (``responses=`` on its decorator) wins over these rules.

500 is not declared: it means a bug (the body is the error body with type ``InternalError``).
405 is not declared either; it carries ``Allow`` (see ``api/errors.py``).
"""

from __future__ import annotations

import inspect
import mimetypes
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from learnloop.api.errors import ErrorBody, OipErrorBody, flat_routes
from learnloop.api.security import authenticate

BEARER = "bearerAuth"
API_KEY = "apiKeyAuth"
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "ll_<id>_<secret>",
        "description": "An API key as a bearer token: `Authorization: Bearer ll_…` "
        "(the word `Bearer` in any case).",
    },
    API_KEY: {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "The same API key in the `X-API-Key` header.",
    },
}

REQUEST_ID_REF = "#/components/headers/RequestId"
REQUEST_ID_HEADER: dict[str, Any] = {
    "description": "The request's id: the `X-Request-ID` sent (up to 64 characters) or a new "
    "UUIDv7. The same id is in the logs and in error bodies.",
    "required": True,
    "schema": {"type": "string"},
}

ERROR_TEXT = {
    "400": "The body could not be parsed.",
    "400-oip": "Invalid request: the body or a parameter does not fit the model or the protocol.",
    "401": "No API key, or one that matches no live key.",
    "403": "The key's role lacks the {permission} permission.",
    "404": "A model, version, alias, dataset, job or other named thing does not exist.",
    "409": "The request clashes with the current state (already exists, wrong job state, …).",
    "413": "The request body is over `api.max_body_bytes`.",
    "422": "Invalid input: the issues name each offending field.",
    "501": "An optional extra this needs is not installed.",
    "503": "A store failed or refused (unreachable, corrupt, foreign or too new database).",
}

BINARY: dict[str, Any] = {"type": "string", "format": "binary"}

DOCS_ASSETS = "/docs/assets"
_ASSET_NAMES = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")


def install_openapi(app: FastAPI) -> None:
    """Complete the app's schema with the rules of this module, and serve ``/docs``,
    ``/docs/oauth2-redirect``, ``/redoc`` and their assets from the installed package. Build the
    app with ``docs_url=None, redoc_url=None`` and call this after the routers are included."""
    build = app.openapi
    done: list[int] = []

    def openapi() -> dict[str, Any]:
        schema = build()  # FastAPI caches it and rebuilds when routes change
        if id(schema) not in done:
            describe(app, schema)
            done[:] = [id(schema)]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    _install_docs(app)


def describe(app: FastAPI, schema: dict[str, Any]) -> None:
    """Apply the module's rules to ``schema`` (FastAPI's schema of ``app``), in place."""
    components = schema.setdefault("components", {})
    models = components.setdefault("schemas", {})
    for model in (ErrorBody, OipErrorBody):
        found = model.model_json_schema(ref_template="#/components/schemas/{model}")
        models.update(found.pop("$defs", {}))
        models[model.__name__] = found
    components["securitySchemes"] = {**components.get("securitySchemes", {}), **SECURITY_SCHEMES}
    components.setdefault("headers", {})["RequestId"] = REQUEST_ID_HEADER
    paths = schema.get("paths", {})
    for route, permission in _api_routes(app):
        item = paths.get(route.path_format)
        if item is None:
            continue
        for method in sorted(route.methods or ()):
            operation = item.get(method.lower())
            if operation is not None:
                _describe_operation(route, permission, operation)
    for name in ("HTTPValidationError", "ValidationError"):
        models.pop(name, None)


def _describe_operation(route: Any, permission: str | None, operation: dict[str, Any]) -> None:
    from learnloop.api.routes.v2 import OipRoute  # v2 declares its bodies with this module

    oip = isinstance(getattr(route, "original_route", route), OipRoute)
    responses: dict[str, Any] = operation.setdefault("responses", {})
    own = {str(code) for code in getattr(route, "responses", {}) or {}}
    validation = responses.pop("422", None)
    if validation is not None and "422" in own:
        responses["422"] = validation  # the route declared its own 422
    # every operation: a query parameter it does not take is refused (api/errors.route_rules)
    codes: list[str] = ["400" if oip else "422"]
    if getattr(route, "body_field", None) is not None:
        codes.append("400")  # FastAPI could not read the body (e.g. JSON that is not UTF-8)
    if "requestBody" in operation:
        codes.append("413")
    if "{" in route.path_format:
        codes.append("404")
    if permission is not None:
        operation["security"] = [{BEARER: []}, {API_KEY: []}]
        codes += ["401", "403", "404", "409", "501", "503"]
    for code in dict.fromkeys(codes):
        if code in responses:
            continue
        body = "ErrorBody" if code == "413" or not oip else "OipErrorBody"
        text = ERROR_TEXT[f"{code}-oip" if oip and code == "400" else code]
        text = text.format(permission=f"`{permission}`")
        responses[code] = {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
        if code == "401":
            responses[code]["headers"] = {
                "WWW-Authenticate": {
                    "description": "`Bearer`",
                    "required": True,
                    "schema": {"type": "string"},
                }
            }
    for response in responses.values():
        response.setdefault("headers", {}).setdefault("X-Request-ID", {"$ref": REQUEST_ID_REF})
    operation["responses"] = dict(sorted(responses.items()))


def _api_routes(app: FastAPI) -> Iterator[tuple[Any, str | None]]:
    """Each API route of the app (as mounted: full path) with the permission its auth
    dependency requires: ``None`` when the route needs no key, ``"any"`` when it authenticates
    without a permission check."""
    for route in flat_routes(app):
        if isinstance(getattr(route, "original_route", route), APIRoute):
            yield route, _permission(route.dependant)


def _permission(dependant: Dependant | None) -> str | None:
    if dependant is None:
        return None
    for sub in dependant.dependencies:
        if sub.call is authenticate:
            return _required(dependant.call) or "any"
        found = _permission(sub)
        if found is not None:
            return found
    return None


def _required(call: Callable[..., Any] | None) -> str | None:
    """The permission a ``require(permission)`` dependency checks, read from its closure."""
    try:
        value = inspect.getclosurevars(call).nonlocals.get("permission")  # type: ignore[arg-type]
    except TypeError:  # not a plain function
        return None
    return None if value is None else str(getattr(value, "value", value))


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its ``$defs`` written in place, for a route that reads its
    body itself and declares it with ``openapi_extra`` (where a ``$ref`` would point nowhere)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


# -- docs pages -----------------------------------------------------------------------------------


def asset_dir() -> Path:
    """The Swagger UI and ReDoc files installed with the ``fastapi-offline`` package."""
    return Path(str(resources.files("fastapi_offline") / "static"))


def _install_docs(app: FastAPI) -> None:
    folder = asset_dir()
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{redirect_url}",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            # no badge fetched from the public validator
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
        )

    @app.get(redirect_url, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )

    @app.get(DOCS_ASSETS + "/{name}", include_in_schema=False)
    def asset(name: str) -> FileResponse:
        if name not in _ASSET_NAMES:
            raise HTTPException(404, "Not Found")
        media = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return FileResponse(
            folder / name, media_type=media, headers={"Cache-Control": "public, max-age=86400"}
        )

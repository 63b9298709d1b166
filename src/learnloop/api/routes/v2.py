"""The Open Inference Protocol (v2) over REST, as KServe and Triton serve it.

Health and readiness answer without a key (for load balancers); metadata and inference need a
key with the ``predict`` permission (unless ``api.auth_enabled`` is false). Errors use the
protocol's body, ``{"error": "message"}``: 400 for a request that does not fit the model, 404
for an unknown model or version, 401/403 for keys (the status of every other learnloop error
comes from ``api/errors.py``).

Infer takes JSON tensors or Triton's binary tensor data extension (what ``tritonclient.http``
sends by default): a JSON header of ``Inference-Header-Content-Length`` bytes followed by the raw
bytes of every input whose ``parameters`` give a ``binary_data_size``. Outputs come back as
binary in the same way when the request asks (``parameters.binary_data_output``, or an output's
``parameters.binary_data``), else as JSON ``data``. A request's ``id`` is echoed; the response
``parameters`` carry learnloop's ``prediction_ids`` and ``served_by`` (JSON-encoded strings).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import ConfigDict, Field, ValidationError

from learnloop.api.dataplane import InferenceDataPlane
from learnloop.api.errors import status_of
from learnloop.api.oip import (
    InferRequestData,
    InferResult,
    InputTensor,
    OutputTensor,
    TensorSpec,
    output_values,
    raw_bytes,
    tensor_from_raw,
    tensor_from_values,
)
from learnloop.api.openapi import BINARY, inline_schema
from learnloop.api.redact import client_message
from learnloop.api.security import Predictor
from learnloop.core.auth import Principal
from learnloop.core.errors import InvalidInput, Issue, LearnloopError
from learnloop.core.identifiers import ModelName, Version
from learnloop.core.inputs import ClientModel
from learnloop.core.limits import JsonObject

log = logging.getLogger("learnloop.api")

HEADER_LENGTH = "inference-header-content-length"
_plane_lock = threading.Lock()


class OipRoute(APIRoute):
    """Answers learnloop errors (auth included) and body errors in the protocol's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except LearnloopError as e:
                return oip_error(e)
            except RequestValidationError as e:
                detail = "; ".join(f"{_loc(err['loc'])}: {err['msg']}" for err in e.errors())
                return JSONResponse({"error": f"invalid request: {detail}"}, 400)

        return route


def oip_error(error: LearnloopError) -> JSONResponse:
    code = 400 if isinstance(error, InvalidInput) else status_of(error)
    if code >= 500:
        log.error("v2 request failed", exc_info=error)
    headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
    return JSONResponse({"error": client_message(error.message)}, code, headers=headers)


router = APIRouter(prefix="/v2", tags=["inference (v2)"], route_class=OipRoute)


# -- wire types -----------------------------------------------------------------------------------


class TensorRequest(ClientModel):
    model_config = ConfigDict(extra="ignore")  # the protocol lets clients add fields

    name: str = Field(min_length=1, max_length=256)
    shape: list[Annotated[int, Field(ge=0, le=2**31 - 1)]] = Field(max_length=16)
    datatype: str = Field(max_length=16)
    parameters: JsonObject = Field(default_factory=dict, max_length=64)
    data: Any = None


class RequestedOutput(ClientModel):
    model_config = ConfigDict(extra="ignore")  # the protocol lets clients add fields

    name: str = Field(min_length=1, max_length=256)
    parameters: JsonObject = Field(default_factory=dict, max_length=64)


class InferRequest(ClientModel):
    """``parameters`` may carry ``subject_id`` (sticky routing) and ``alias``."""

    model_config = ConfigDict(extra="ignore")  # the protocol lets clients add fields

    id: str | None = Field(None, max_length=256)
    parameters: JsonObject = Field(default_factory=dict, max_length=64)
    inputs: list[TensorRequest] = Field(max_length=1024)
    outputs: list[RequestedOutput] | None = Field(None, max_length=1024)


def plane_of(request: Request) -> InferenceDataPlane:
    """The app's data plane, made on first use (``create_app`` knows nothing of it)."""
    state = request.app.state
    with _plane_lock:
        plane: InferenceDataPlane | None = getattr(state, "oip", None)
        if plane is None:
            plane = state.oip = InferenceDataPlane(state.container)
    return plane


async def body_of(request: Request) -> bytes:
    return await request.body()


def _not_ready(*names: str) -> dict[int | str, dict[str, Any]]:
    """The 503 of a readiness route: its ``ready: false`` body, or the protocol's error body
    when a store fails."""
    fields: dict[str, Any] = {name: {"type": "string"} for name in names}
    fields["ready"] = {"type": "boolean"}
    body = {"type": "object", "properties": fields, "required": [*names, "ready"]}
    schema = {"anyOf": [body, {"$ref": "#/components/schemas/OipErrorBody"}]}
    content = {"application/json": {"schema": schema}}
    return {503: {"description": "Not ready.", "content": content}}


_INFER_DOCS: dict[str, Any] = {
    "responses": {
        200: {
            "description": "Outputs as JSON, or (when the request asks for binary outputs) a "
            "JSON header of `Inference-Header-Content-Length` bytes followed by the raw "
            "output bytes.",
            "content": {"application/octet-stream": {"schema": BINARY}},
            "headers": {
                "Inference-Header-Content-Length": {
                    "description": "Length of the JSON header (binary answers only).",
                    "schema": {"type": "integer"},
                }
            },
        }
    },
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "description": "JSON tensors, or Triton's binary tensor data extension: a JSON "
            "header of `Inference-Header-Content-Length` bytes followed by the raw bytes of "
            "every input whose `parameters` give a `binary_data_size`.",
            "content": {
                "application/json": {"schema": inline_schema(InferRequest)},
                "application/octet-stream": {"schema": BINARY},
            },
        }
    },
}


# -- health ---------------------------------------------------------------------------------------


@router.get("/health/live")
def live() -> dict[str, bool]:
    """The process answers. Needs no key."""
    return {"live": True}


@router.get("/health/ready", responses=_not_ready())
def ready(request: Request) -> JSONResponse:
    """The database answers and is migrated (503 otherwise). Needs no key."""
    ok = plane_of(request).server_ready()
    return JSONResponse({"ready": ok}, 200 if ok else 503)


@router.get("/models/{name}/ready", responses=_not_ready("name"))
def model_ready(name: ModelName, request: Request) -> JSONResponse:
    """The versions the model's deployment serves load (503 otherwise). Needs no key."""
    ok = plane_of(request).model_ready(name)
    return JSONResponse({"name": name, "ready": ok}, 200 if ok else 503)


@router.get("/models/{name}/versions/{version}/ready", responses=_not_ready("name", "version"))
def version_ready(name: ModelName, version: Version, request: Request) -> JSONResponse:
    """The version loads (503 otherwise). Needs no key."""
    ok = plane_of(request).model_ready(name, version)
    return JSONResponse({"name": name, "version": version, "ready": ok}, 200 if ok else 503)


# -- metadata -------------------------------------------------------------------------------------


@router.get("")
def server_metadata(request: Request, principal: Principal = Predictor) -> dict[str, Any]:
    return plane_of(request).server_metadata()


@router.get("/models/{name}")
def model_metadata(
    name: ModelName, request: Request, principal: Principal = Predictor
) -> dict[str, Any]:
    """Inputs are the features of the version the deployment mainly serves."""
    return _metadata(plane_of(request), name, None)


@router.get("/models/{name}/versions/{version}")
def version_metadata(
    name: ModelName, version: Version, request: Request, principal: Principal = Predictor
) -> dict[str, Any]:
    return _metadata(plane_of(request), name, version)


def _metadata(plane: InferenceDataPlane, name: str, version: str | None) -> dict[str, Any]:
    found = plane.model_metadata(name, version)
    return {
        "name": found.name,
        "versions": found.versions,
        "platform": found.platform,
        "inputs": [_spec(s) for s in found.inputs],
        "outputs": [_spec(s) for s in found.outputs],
    }


def _spec(spec: TensorSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": spec.name, "datatype": spec.datatype, "shape": list(spec.shape)}
    if spec.parameters:
        out["parameters"] = dict(spec.parameters)
    return out


# -- infer ----------------------------------------------------------------------------------------


@router.post("/models/{name}/infer", **_INFER_DOCS)
def infer(
    name: ModelName,
    request: Request,
    body: bytes = Depends(body_of),
    principal: Principal = Predictor,
) -> Response:
    """Infer through the model's deployment (routing, fallback, ledger)."""
    return _infer(plane_of(request), name, None, request, body)


@router.post("/models/{name}/versions/{version}/infer", **_INFER_DOCS)
def infer_version(
    name: ModelName,
    version: Version,
    request: Request,
    body: bytes = Depends(body_of),
    principal: Principal = Predictor,
) -> Response:
    """Infer on one version (still recorded in the ledger)."""
    return _infer(plane_of(request), name, version, request, body)


def _infer(
    plane: InferenceDataPlane, name: str, version: str | None, request: Request, body: bytes
) -> Response:
    wire, binary = _parse(request, body)
    data = InferRequestData(
        inputs=_inputs(wire, binary),
        id=wire.id or "",
        outputs=[o.name for o in wire.outputs or ()],
        subject_id=_text_param(wire.parameters, "subject_id"),
        alias=_text_param(wire.parameters, "alias"),
    )
    return _response(plane.infer(name, version, data), wire)


def _parse(request: Request, body: bytes) -> tuple[InferRequest, bytes]:
    header = request.headers.get(HEADER_LENGTH)
    size = len(body)
    if header is not None:
        if not header.isdigit() or int(header) > len(body):
            raise InvalidInput(
                "invalid request",
                [Issue("Inference-Header-Content-Length", f"{header!r} for a {size}-byte body")],
            )
        size = int(header)
    try:
        wire = InferRequest.model_validate_json(body[:size])
    except ValidationError as e:
        issues = [Issue(_loc(err["loc"]) or "<body>", err["msg"]) for err in e.errors()]
        raise InvalidInput("invalid request", issues) from None
    return wire, body[size:]


def _inputs(wire: InferRequest, binary: bytes) -> list[InputTensor]:
    out = []
    offset = 0
    for t in wire.inputs:
        size = t.parameters.get("binary_data_size")
        if size is None:
            if t.data is None:
                raise InvalidInput("invalid tensor", [Issue(f"input {t.name!r}", "has no data")])
            out.append(tensor_from_values(t.name, t.datatype, t.shape, t.data))
            continue
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            left = len(binary) - offset
            what = f"binary_data_size {size!r}, but {left} bytes of binary data are left"
            raise InvalidInput("invalid tensor", [Issue(f"input {t.name!r}", what)])
        out.append(tensor_from_raw(t.name, t.datatype, t.shape, binary[offset : offset + size]))
        offset += size
    if offset != len(binary):
        what = f"{len(binary) - offset} bytes of binary data belong to no input"
        raise InvalidInput("invalid request", [Issue("body", what)])
    return out


def _response(result: InferResult, wire: InferRequest) -> Response:
    all_binary = bool(wire.parameters.get("binary_data_output", False))
    asked = {o.name: o.parameters.get("binary_data") for o in wire.outputs or ()}
    blobs: list[bytes] = []
    outputs = []
    for tensor in result.outputs:
        entry = _tensor(tensor)
        flag = asked.get(tensor.name)
        if flag is True or (flag is None and all_binary):
            blob = raw_bytes(tensor)
            entry["parameters"] = {**entry.get("parameters", {}), "binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = output_values(tensor)
        outputs.append(entry)
    body: dict[str, Any] = {
        "model_name": result.model,
        "model_version": result.version,
        "outputs": outputs,
        "parameters": dict(result.parameters),
    }
    if result.id:
        body["id"] = result.id
    if not blobs:
        return JSONResponse(body)
    header = json.dumps(body).encode()
    return Response(
        header + b"".join(blobs),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(header))},
    )


def _tensor(tensor: OutputTensor) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": tensor.name,
        "datatype": tensor.datatype,
        "shape": list(tensor.shape),
    }
    if tensor.parameters:
        out["parameters"] = dict(tensor.parameters)
    return out


def _text_param(parameters: dict[str, Any], key: str) -> str | None:
    value = parameters.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        what = f"must be a non-empty string, got {value!r}"
        raise InvalidInput("invalid request", [Issue(f"parameters.{key}", what)])
    return value


def _loc(parts: Any) -> str:
    return ".".join(str(p) for p in parts)

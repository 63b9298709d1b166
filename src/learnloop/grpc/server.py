"""The Open Inference Protocol (v2) gRPC service ``inference.GRPCInferenceService``.

A thread-pool ``grpc`` server over the same :class:`~learnloop.api.dataplane.InferenceDataPlane` as
the REST routes, so KServe and Triton clients (``tritonclient.grpc``) work unchanged.

* ``ServerLive``, ``ServerReady`` and ``ModelReady`` need no key (load balancers);
  ``ServerMetadata``, ``ModelMetadata`` and ``ModelInfer`` need a key with the ``predict``
  permission, sent as ``authorization: Bearer KEY`` or ``x-api-key: KEY`` metadata (unless
  ``api.auth_enabled`` is false): ``UNAUTHENTICATED`` without a valid one, ``PERMISSION_DENIED``
  for a role that may not predict.
* Inputs come as ``raw_input_contents`` (what tritonclient sends) or typed ``contents``; the
  response answers in kind (raw outputs for raw inputs).
* The response ``parameters`` carry learnloop's ``prediction_ids`` and ``served_by`` (JSON).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import wraps
from typing import Any, TypeVar

import grpc

from learnloop.api.dataplane import InferenceDataPlane
from learnloop.api.oip import (
    InferRequestData,
    InputTensor,
    OutputTensor,
    Parameter,
    TensorSpec,
    output_values,
    raw_bytes,
    tensor_from_raw,
    tensor_from_values,
)
from learnloop.api.redact import client_message
from learnloop.container import Container
from learnloop.core import errors as e
from learnloop.core.auth import LOCAL_OPERATOR, Permission, Principal
from learnloop.core.serving import ModelUnavailable
from learnloop.grpc import grpc_predict_v2_pb2 as pb
from learnloop.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

log = logging.getLogger("learnloop.grpc")

STATUS: list[tuple[type[e.LearnloopError], grpc.StatusCode]] = [
    (e.NotFound, grpc.StatusCode.NOT_FOUND),
    (e.Conflict, grpc.StatusCode.FAILED_PRECONDITION),
    (e.InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (e.Unauthorized, grpc.StatusCode.UNAUTHENTICATED),
    (e.Forbidden, grpc.StatusCode.PERMISSION_DENIED),
    (e.MissingDependency, grpc.StatusCode.UNIMPLEMENTED),
    (e.StorageError, grpc.StatusCode.UNAVAILABLE),
    (ModelUnavailable, grpc.StatusCode.UNAVAILABLE),
    (e.LearnloopError, grpc.StatusCode.INTERNAL),
]
"""The one table from learnloop errors to gRPC status codes."""

CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
"""Where ``InferTensorContents`` holds each datatype (FP16 travels only as raw bytes)."""


def status_of(error: e.LearnloopError) -> grpc.StatusCode:
    return next(code for cls, code in STATUS if isinstance(error, cls))


R = TypeVar("R")
Handler = Callable[["InferenceServicer", Any, grpc.ServicerContext], R]


def translated(method: Handler[R]) -> Handler[R]:
    """Abort the call with the status of a learnloop error (INTERNAL for anything else)."""

    @wraps(method)
    def call(self: InferenceServicer, request: Any, context: grpc.ServicerContext) -> R:
        try:
            return method(self, request, context)
        except e.LearnloopError as error:
            code = status_of(error)
            if code is grpc.StatusCode.INTERNAL:
                log.error("gRPC call failed", exc_info=error)
            context.abort(code, client_message(error.message))
        except Exception as error:
            log.exception("gRPC call failed")
            context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(error).__name__}")
        raise AssertionError("unreachable: context.abort raises")

    return call


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """The six protocol calls, each parse → data plane → serialize."""

    def __init__(self, container: Container, plane: InferenceDataPlane) -> None:
        self.container = container
        self.plane = plane

    def authorize(self, context: grpc.ServicerContext) -> Principal:
        if not self.container.settings.api.auth_enabled:
            return LOCAL_OPERATOR
        metadata = {k.lower(): v for k, v in context.invocation_metadata() or ()}
        header = str(metadata.get("authorization", ""))
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        principal = self.container.keys.authenticate(token or metadata.get("x-api-key"))
        principal.require(Permission.PREDICT)
        return principal

    @translated
    def ServerLive(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.ServerLiveResponse(live=True)

    @translated
    def ServerReady(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb.ServerReadyResponse(ready=self.plane.server_ready())

    @translated
    def ModelReady(self, request: Any, context: grpc.ServicerContext) -> Any:
        ready = self.plane.model_ready(request.name, request.version or None)
        return pb.ModelReadyResponse(ready=ready)

    @translated
    def ServerMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.authorize(context)
        return pb.ServerMetadataResponse(**self.plane.server_metadata())

    @translated
    def ModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.authorize(context)
        found = self.plane.model_metadata(request.name, request.version or None)
        return pb.ModelMetadataResponse(
            name=found.name,
            versions=found.versions,
            platform=found.platform,
            inputs=[_tensor_metadata(s) for s in found.inputs],
            outputs=[_tensor_metadata(s) for s in found.outputs],
        )

    @translated
    def ModelInfer(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.authorize(context)
        raw = len(request.raw_input_contents) > 0
        data = InferRequestData(
            inputs=_inputs(request),
            id=request.id,
            outputs=[o.name for o in request.outputs],
            subject_id=_text_param(request.parameters, "subject_id"),
            alias=_text_param(request.parameters, "alias"),
        )
        result = self.plane.infer(request.model_name, request.model_version or None, data)
        response = pb.ModelInferResponse(
            model_name=result.model, model_version=result.version, id=result.id
        )
        for key, value in result.parameters.items():
            response.parameters[key].CopyFrom(_parameter(value))
        for tensor in result.outputs:
            out = response.outputs.add(
                name=tensor.name, datatype=tensor.datatype, shape=list(tensor.shape)
            )
            for key, value in tensor.parameters.items():
                out.parameters[key].CopyFrom(_parameter(value))
            if raw:
                response.raw_output_contents.append(raw_bytes(tensor))
            else:
                _fill_contents(out.contents, tensor)
        return response


def _inputs(request: Any) -> list[InputTensor]:
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        what = f"{len(raw)} entries for {len(request.inputs)} inputs"
        raise e.InvalidInput("invalid request", [e.Issue("raw_input_contents", what)])
    out = []
    for i, t in enumerate(request.inputs):
        if raw:
            out.append(tensor_from_raw(t.name, t.datatype, t.shape, raw[i]))
            continue
        field = CONTENTS_FIELD.get(t.datatype)
        if field is None:
            what = f"{t.datatype} travels only in raw_input_contents"
            raise e.InvalidInput("invalid tensor", [e.Issue(f"input {t.name!r}", what)])
        out.append(
            tensor_from_values(t.name, t.datatype, t.shape, list(getattr(t.contents, field)))
        )
    return out


def _fill_contents(contents: Any, tensor: OutputTensor) -> None:
    values = output_values(tensor)
    if tensor.datatype == "BYTES":
        contents.bytes_contents.extend(str(v).encode("utf-8") for v in values)
    else:
        getattr(contents, CONTENTS_FIELD[tensor.datatype]).extend(values)


def _tensor_metadata(spec: TensorSpec) -> Any:
    out = pb.ModelMetadataResponse.TensorMetadata(
        name=spec.name, datatype=spec.datatype, shape=list(spec.shape)
    )
    for key, value in spec.parameters.items():
        out.parameters[key].CopyFrom(_parameter(value))
    return out


def _parameter(value: Parameter) -> Any:
    if isinstance(value, bool):
        return pb.InferParameter(bool_param=value)
    if isinstance(value, int):
        return pb.InferParameter(int64_param=value)
    if isinstance(value, float):
        return pb.InferParameter(double_param=value)
    return pb.InferParameter(string_param=str(value))


def _text_param(parameters: Any, key: str) -> str | None:
    if key not in parameters:
        return None
    param = parameters[key]
    if param.WhichOneof("parameter_choice") != "string_param" or not param.string_param:
        what = "must be a non-empty string_param"
        raise e.InvalidInput("invalid request", [e.Issue(f"parameters.{key}", what)])
    return str(param.string_param)


class GrpcInferenceServer:
    """Serves :class:`InferenceServicer` on ``host:port`` from a thread pool.

    ``start()`` binds (raising ``Conflict`` when the port is taken; port 0 picks a free one)
    and returns the bound port; ``stop()`` lets calls in flight finish for ``grace`` seconds.
    The container must be open; the server neither opens nor closes it.
    """

    def __init__(
        self,
        container: Container,
        host: str = "127.0.0.1",
        port: int = 8081,
        *,
        max_workers: int = 16,
        max_message_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.container = container
        self.host = host
        self.port = port
        self.max_workers = max_workers
        self.max_message_bytes = max_message_bytes
        self._server: grpc.Server | None = None

    def start(self) -> int:
        options = [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.so_reuseport", 0),  # a taken port is an error, not a shared one
        ]
        server = grpc.server(
            ThreadPoolExecutor(self.max_workers, thread_name_prefix="ll-grpc"), options=options
        )
        servicer = InferenceServicer(self.container, InferenceDataPlane(self.container))
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, server)
        address = f"{self.host}:{self.port}"
        try:
            bound = server.add_insecure_port(address)
        except RuntimeError as error:
            raise e.Conflict(f"cannot bind the gRPC server to {address}: {error}") from error
        if bound == 0:
            raise e.Conflict(f"cannot bind the gRPC server to {address}")
        server.start()
        self._server, self.port = server, bound
        log.info("gRPC server listening", extra={"host": self.host, "port": bound})
        return bound

    def stop(self, grace: float | None = 5.0) -> None:
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None
            log.info("gRPC server stopped", extra={"host": self.host, "port": self.port})

    def __enter__(self) -> GrpcInferenceServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

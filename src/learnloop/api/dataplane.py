"""The v2 data plane: readiness, model metadata and inference over the serving engine.

Shared by the REST routes (``api/routes/v2.py``) and the gRPC server (``grpc/server.py``); the
tensor conversions it uses live in :mod:`learnloop.api.oip`.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from learnloop import __version__
from learnloop.api.oip import (
    EXTENSIONS,
    SERVER_NAME,
    FamilySchemas,
    InferRequestData,
    InferResult,
    Parameter,
    Signature,
    TensorSpec,
    rows_from_tensors,
    signature_of,
    tensors_from_outputs,
)
from learnloop.container import Container
from learnloop.core.errors import LearnloopError
from learnloop.core.identifiers import check, check_alias, check_model, check_version


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    versions: list[str]
    platform: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


class InferenceDataPlane:
    """The protocol's operations over a container's services; REST and gRPC both call these.

    Signatures are cached: per version for good (versions are immutable); per model (and alias)
    for the version a request without a version goes to, dropped when an alias or deployment
    changes in this process and re-read after ``api.alias_cache_ttl_s`` otherwise. Thread-safe.
    """

    def __init__(self, container: Container) -> None:
        self.container = container
        self._by_version: dict[tuple[str, str], Signature] = {}
        self._by_route: dict[tuple[str, str], tuple[float, Signature]] = {}
        self._lock = threading.Lock()
        container.registry.on_alias_change(lambda model, _alias: self._forget(model))
        container.deployments.on_change(lambda model, _spec: self._forget(model))

    # -- health & metadata ------------------------------------------------------------------------

    def server_ready(self) -> bool:
        try:
            return self.container.db.is_current()
        except Exception:  # any backend failure means not ready
            return False

    def server_metadata(self) -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": __version__, "extensions": list(EXTENSIONS)}

    def model_ready(self, model: str, version: str | None = None) -> bool:
        """Whether ``version`` (default: every serving arm's version) loads; ``NotFound`` for an
        unknown model or version."""
        _check_target(model, version)
        registry = self.container.registry
        if version:
            registry.get_version(model, version)
            versions = [version]
        else:
            registry.get_model(model)
            try:
                versions = self._serving_versions(model)
            except LearnloopError:
                return False
        try:
            for v in versions:
                self.container.serving.models.get(model, v)
        except LearnloopError:
            return False
        return True

    def model_metadata(self, model: str, version: str | None = None) -> ModelMetadata:
        _check_target(model, version)
        signature = self.signature(model, version)
        versions = [v.version for v in self.container.registry.list_versions(model)]
        return ModelMetadata(
            model, versions, signature.platform, signature.inputs, signature.outputs
        )

    # -- infer ------------------------------------------------------------------------------------

    def infer(self, model: str, version: str | None, request: InferRequestData) -> InferResult:
        """Decode, predict through ``container.serving`` (deployment routing without a version),
        encode. Without a version, inputs are checked against the version the deployment mainly
        serves."""
        _check_target(model, version)
        if request.alias is not None:
            check_alias(request.alias, "parameters.alias")
        if request.subject_id is not None:
            check("subject", request.subject_id, "parameters.subject_id")
        alias = None if version else request.alias
        signature = self.signature(model, version, alias)
        rows = rows_from_tensors(signature, request.inputs)
        served = self.container.serving.predict(
            model,
            rows,
            subject_id=request.subject_id,
            alias=alias,
            version=version or None,
        )
        if served.version != signature.version:
            signature = self.signature(model, served.version)
        outputs = tensors_from_outputs(served.outputs, signature, request.outputs)
        parameters: dict[str, Parameter] = {
            "prediction_ids": json.dumps(served.prediction_ids),
            "served_by": json.dumps(served.served_by),
            "arm": served.arm,
        }
        return InferResult(
            model, served.version, request.id, outputs, parameters, served.prediction_ids
        )

    # -- signatures -------------------------------------------------------------------------------

    def signature(
        self, model: str, version: str | None = None, alias: str | None = None
    ) -> Signature:
        """The signature of ``version``, else of ``alias``'s version, else of the version the
        model's deployment mainly serves."""
        if version:
            return self._version_signature(model, version)
        key = (model, alias or "")
        now = time.monotonic()
        with self._lock:
            hit = self._by_route.get(key)
        if hit and now - hit[0] < self.container.settings.api.alias_cache_ttl_s:
            return hit[1]
        resolved = (
            self.container.registry.resolve(model, alias) if alias else self._primary_version(model)
        )
        found = self._version_signature(model, resolved)
        with self._lock:
            self._by_route[key] = (now, found)
        return found

    def _version_signature(self, model: str, version: str) -> Signature:
        with self._lock:
            hit = self._by_version.get((model, version))
        if hit is not None:
            return hit
        record = self.container.registry.get_version(model, version)
        instance = self.container.serving.models.get(model, version).instance
        schemas = FamilySchemas(type(instance).Input, type(instance).Output)
        found = signature_of(model, version, record.family, instance.describe(), schemas)
        with self._lock:
            if len(self._by_version) >= 1024:
                self._by_version.clear()
            self._by_version[(model, version)] = found
        return found

    def _primary_version(self, model: str) -> str:
        _, spec = self.container.serving.deployment(model)
        arm = max(spec.effective_weights(), key=lambda pair: pair[1])[0]
        return arm.version or self.container.registry.resolve(model, str(arm.alias))

    def _serving_versions(self, model: str) -> list[str]:
        _, spec = self.container.serving.deployment(model)
        registry = self.container.registry
        return [
            arm.version or registry.resolve(model, str(arm.alias))
            for arm, weight in spec.effective_weights()
            if weight > 0
        ]

    def _forget(self, model: str) -> None:
        with self._lock:
            for key in [k for k in self._by_route if k[0] == model]:
                del self._by_route[key]


def _check_target(model: str, version: str | None) -> None:
    """The identifier rules every transport shares (REST checks them in its types too; gRPC
    arrives here unchecked)."""
    check_model(model, "model_name")
    if version:
        check_version(version, "model_version")

"""Wire types of the /v1 API (``…Request`` in, ``…Response`` out)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from learnloop.api.redact import redact
from learnloop.core.identifiers import AliasName, ModelName, Priority, SubjectId, Text, Version
from learnloop.core.inputs import ClientModel
from learnloop.core.limits import (
    MAX_FEATURES,
    MAX_NAME_CHARS,
    MAX_STRING_CHARS,
    JsonObject,
    name_problem,
    value_problem,
)
from learnloop.core.records import (
    AliasEvent,
    ApiKeyRecord,
    AuditEvent,
    DatasetRecord,
    JobEvent,
    JobRecord,
    ModelRecord,
    VersionRecord,
)


class Strict(ClientModel):
    model_config = ConfigDict(extra="forbid")


class CreateModelRequest(Strict):
    name: ModelName
    family: Text
    description: str = Field("", max_length=4096)


class ModelResponse(BaseModel):
    name: str
    family: str
    description: str
    created_at: datetime
    aliases: dict[str, str]
    latest_version: str | None

    @classmethod
    def of(cls, r: ModelRecord) -> ModelResponse:
        return cls(**r.__dict__)


class VersionResponse(BaseModel):
    model: str
    version: str
    family: str
    created_at: datetime
    run_id: str | None
    params: dict[str, Any]
    metrics: dict[str, float]
    dataset_id: str | None
    code_version: str
    aliases: list[str]

    @classmethod
    def of(cls, r: VersionRecord) -> VersionResponse:
        d = {k: v for k, v in r.__dict__.items() if k != "source"}
        return cls(**{**d, "aliases": list(r.aliases)})


class SetAliasRequest(Strict):
    version: Version = Field(description="Version number the alias should point at.")
    reason: str = Field("", max_length=1024)


class RollbackRequest(Strict):
    reason: str = Field("", max_length=1024)


class AliasEventResponse(BaseModel):
    id: int
    model: str
    alias: str
    action: str
    from_version: str | None
    to_version: str | None
    actor: str
    reason: str
    at: datetime

    @classmethod
    def of(cls, e: AliasEvent) -> AliasEventResponse:
        return cls(**e.__dict__)


class AliasAtResponse(BaseModel):
    model: str
    alias: str
    at: datetime
    version: str | None


class DatasetResponse(BaseModel):
    id: str
    family: str
    name: str
    rows: int
    content_hash: str
    source: str
    columns: list[dict[str, str]]
    created_at: datetime
    synthetic: bool
    subject_column: str | None = None
    erased: dict[str, Any] | None = None
    manifest: dict[str, Any] = {}

    @classmethod
    def of(cls, r: DatasetRecord) -> DatasetResponse:
        return cls(
            id=r.id,
            family=r.family,
            name=r.name,
            rows=r.rows,
            content_hash=r.content_hash,
            source=r.source,
            columns=[{"name": n, "dtype": t} for n, t in r.schema],
            created_at=r.created_at,
            synthetic=r.synthetic,
            subject_column=r.manifest.get("subject_column"),
            erased=r.manifest.get("erased"),
            manifest=json.loads(json.dumps(dict(r.manifest), default=str)),
        )


class SubmitJobRequest(Strict):
    kind: Text = Field(description="Job kind, e.g. `train`.")
    payload: JsonObject = Field(default_factory=dict, max_length=256)
    priority: Literal["high", "normal", "low"] | Priority = "normal"
    max_attempts: int | None = Field(
        None, ge=1, le=20, description="Default: the `jobs.max_attempts` setting."
    )


class JobResponse(BaseModel):
    id: str
    kind: str
    status: str
    priority: int
    progress: float
    message: str
    attempts: int
    max_attempts: int
    control: str | None
    payload: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None = Field(
        description="Why the job failed (the message only: its traceback is in the server log)."
    )
    submitted_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None

    @classmethod
    def of(cls, j: JobRecord) -> JobResponse:
        d = {k: v for k, v in j.__dict__.items() if k in cls.model_fields}
        return cls(
            **{
                **d,
                "status": j.status.value,
                "control": j.control and j.control.value,
                "error": redact(j.error),
                "message": redact(j.message) or "",
            }
        )


class JobEventResponse(BaseModel):
    seq: int
    at: datetime
    kind: str
    message: str
    fraction: float | None
    metrics: dict[str, float]

    @classmethod
    def of(cls, e: JobEvent) -> JobEventResponse:
        return cls(**{k: v for k, v in e.__dict__.items() if k != "job_id"})


def _bounded_input(item: dict[str, Any]) -> dict[str, Any]:
    """One prediction input within the bounds of ``core/limits.py`` (names, strings, size)."""
    for name, value in item.items():
        problem = name_problem(name)
        if problem is not None:
            raise ValueError(f"feature name {name[:40]!r}…: {problem}")
        problem = value_problem(value)
        if problem is not None:
            raise ValueError(f"{name}: {problem}")
    return item


PredictInput = Annotated[
    dict[str, Any], Field(max_length=MAX_FEATURES), AfterValidator(_bounded_input)
]


class PredictRequest(Strict):
    inputs: list[PredictInput] = Field(
        min_length=1,
        max_length=10_000,
        description=f"Feature name → value, one object per prediction: at most {MAX_FEATURES} "
        f"features, names of 1–{MAX_NAME_CHARS} characters without control characters, "
        f"strings of at most {MAX_STRING_CHARS} characters.",
    )
    subject_id: SubjectId | None = Field(
        None, description="Who the prediction is about (sticky A/B arm, GDPR)."
    )
    alias: AliasName | None = Field(None, description="Serve this alias, bypassing the deployment.")
    version: Version | None = Field(
        None, description="Serve this version, bypassing the deployment."
    )


class PredictResponse(BaseModel):
    model: str
    version: str
    arm: str
    alias: str | None
    outputs: list[dict[str, Any]]
    prediction_ids: list[str]
    served_by: dict[str, Any]
    cache_hits: int
    latency_ms: float
    deployment_revision: int


class CreateKeyRequest(Strict):
    role: Literal["admin", "operator", "ingest", "reader"]
    name: str = Field("", max_length=128)


class KeyResponse(BaseModel):
    id: str
    name: str
    role: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None

    @classmethod
    def of(cls, r: ApiKeyRecord) -> KeyResponse:
        return cls(**r.__dict__)


class CreatedKeyResponse(KeyResponse):
    key: str = Field(description="The secret; shown only in this response.")


class AuditEventResponse(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
    request_id: str | None

    @classmethod
    def of(cls, e: AuditEvent) -> AuditEventResponse:
        return cls(**e.__dict__)

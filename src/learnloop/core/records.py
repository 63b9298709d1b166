"""Immutable records that cross layer boundaries (stores → services → adapters)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class JobControl(StrEnum):
    """A cooperative request to a running job, seen at its next safe point."""

    PAUSE = "pause"
    CANCEL = "cancel"


@dataclass(frozen=True)
class JobRecord:
    id: str
    kind: str
    payload: Mapping[str, Any]
    status: JobStatus
    priority: int
    progress: float
    message: str
    attempts: int
    max_attempts: int
    created_at: datetime
    updated_at: datetime
    submitted_by: str = ""
    control: JobControl | None = None
    worker_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    result: Mapping[str, Any] | None = None
    error: str | None = None
    traceback: str | None = None


@dataclass(frozen=True)
class JobEvent:
    job_id: str
    seq: int
    at: datetime
    kind: str  # "status" | "progress" | "log"
    message: str
    fraction: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkerRecord:
    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime


@dataclass(frozen=True)
class AuditEvent:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: Mapping[str, Any]
    request_id: str | None = None


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    name: str
    role: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class AliasEvent:
    id: int
    model: str
    alias: str
    action: str  # "set" | "rollback" | "delete"
    from_version: str | None
    to_version: str | None
    actor: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class DatasetRecord:
    id: str
    family: str
    name: str
    rows: int
    content_hash: str
    source: str
    path: str
    schema: tuple[tuple[str, str], ...]
    created_at: datetime
    synthetic: bool = False
    manifest: Mapping[str, Any] = field(default_factory=dict)


RETRAIN_TAG = "learnloop.retrain_required"


@dataclass(frozen=True)
class ModelRecord:
    name: str
    family: str
    description: str
    created_at: datetime
    aliases: Mapping[str, str]
    latest_version: str | None


@dataclass(frozen=True)
class VersionRecord:
    model: str
    version: str
    family: str
    created_at: datetime
    run_id: str | None
    params: Mapping[str, Any]
    metrics: Mapping[str, float]
    dataset_id: str | None
    code_version: str
    aliases: tuple[str, ...] = ()
    source: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def retrain_required(self) -> str | None:
        """Why this version must be retrained (e.g. a data-subject erasure), or None."""
        return self.tags.get(RETRAIN_TAG) or None

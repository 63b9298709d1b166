"""Protocols of the SQL-backed stores the core services use.

Every implementation is safe to share between threads and between processes that open the same
database; methods run in their own transaction unless stated otherwise. Lookups of missing
things return ``None``; writes that clash raise :class:`~learnloop.core.errors.Conflict`.
The contract suite in ``learnloop.testing.stores`` runs against SQLite and PostgreSQL.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from learnloop.core.feedback import FeedbackRecord
from learnloop.core.ledger import PredictionRecord
from learnloop.core.records import (
    AliasEvent,
    ApiKeyRecord,
    AuditEvent,
    DatasetRecord,
    JobControl,
    JobEvent,
    JobRecord,
    JobStatus,
    WorkerRecord,
)


class JobStore(Protocol):
    """Durable job queue. ``claim`` hands a queued job to exactly one worker, also when many
    workers in many processes claim at once."""

    def submit(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        priority: int = 0,
        max_attempts: int = 3,
        submitted_by: str = "",
    ) -> JobRecord: ...

    def get(self, job_id: str) -> JobRecord | None: ...

    def list(
        self, *, status: JobStatus | None = None, kind: str | None = None, limit: int = 100
    ) -> builtins.list[JobRecord]: ...

    def claim(self, worker_id: str, kinds: Sequence[str]) -> JobRecord | None:
        """Move the highest-priority, oldest queued job of ``kinds`` to running; attempts += 1."""
        ...

    def heartbeat(self, job_id: str, worker_id: str) -> JobControl | None:
        """Refresh a running job's heartbeat; return any pending control request.

        Raises ``Conflict`` if the job is no longer running on ``worker_id`` (it was re-queued)."""
        ...

    def report(
        self,
        job_id: str,
        *,
        fraction: float | None,
        message: str,
        metrics: Mapping[str, float] | None = None,
        kind: str = "progress",
    ) -> None:
        """Append an event; progress events also update the job's progress and message."""
        ...

    def finish(
        self,
        job_id: str,
        worker_id: str,
        status: JobStatus,
        *,
        result: Mapping[str, Any] | None = None,
        error: str | None = None,
        traceback: str | None = None,
    ) -> JobRecord:
        """Leave running for ``status`` (succeeded/failed/cancelled/paused, or queued to retry)."""
        ...

    def request_control(self, job_id: str, control: JobControl) -> JobRecord:
        """Ask a job to pause or cancel. Queued/paused jobs are cancelled at once; a queued job
        asked to pause is paused at once. Raises ``Conflict`` for finished jobs."""
        ...

    def resume(self, job_id: str) -> JobRecord:
        """Re-queue a paused job (``Conflict`` unless paused)."""
        ...

    def requeue_stale(self, older_than: datetime) -> builtins.list[JobRecord]:
        """Re-queue running jobs whose heartbeat is older than ``older_than`` (their worker
        died); jobs out of attempts are failed instead. Returns the jobs changed."""
        ...

    def events(
        self, job_id: str, after_seq: int = 0, limit: int = 1000
    ) -> builtins.list[JobEvent]: ...

    def worker_beat(self, worker_id: str, host: str, pid: int) -> None:
        """Register or refresh a worker process."""
        ...

    def workers(self, alive_since: datetime) -> builtins.list[WorkerRecord]: ...

    def worker_gone(self, worker_id: str) -> None: ...


class AuditLog(Protocol):
    """Append-only log of every change. There is no update or delete."""

    def append(
        self,
        actor: str,
        action: str,
        target: str,
        detail: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> AuditEvent: ...

    def list(
        self, *, target: str | None = None, action: str | None = None, limit: int = 100
    ) -> builtins.list[AuditEvent]: ...


class KeyStore(Protocol):
    """API keys, stored as hashes only."""

    def add(
        self, key_id: str, name: str, role: str, key_hash: str, created_by: str
    ) -> ApiKeyRecord: ...

    def find(self, key_hash: str) -> ApiKeyRecord | None:
        """The active (not revoked) key with this hash."""
        ...

    def list(self) -> list[ApiKeyRecord]: ...

    def revoke(self, key_id: str) -> ApiKeyRecord | None: ...


@dataclass(frozen=True)
class AliasMove:
    """One alias move to append to the history; its ``from_version`` is filled in by the store
    (the version the alias pointed to just before, per the history)."""

    action: str  # "set" | "rollback" | "delete" | "sync"
    to_version: str | None
    actor: str
    reason: str = ""


class AliasHistory(Protocol):
    """Every alias move, kept as a chain per (model, alias), so "what was X at time T" and
    rollback work.

    The history of one (model, alias) is a **chain**: each event's ``from_version`` is the
    previous event's ``to_version`` (``None`` before the first), and ids and ``at`` increase
    along it. Implementations guarantee this by running :meth:`move` serialised per
    (model, alias) across threads and processes sharing the database.
    """

    def move(
        self,
        model: str,
        alias: str,
        decide: Callable[[builtins.list[AliasEvent]], Sequence[AliasMove]],
    ) -> builtins.list[AliasEvent]:
        """Append moves to the chain of ``model``/``alias``, serialised with every other move
        of that alias.

        Under a lock held until the transaction ends, ``decide(history)`` is called with the
        alias's events (oldest first, read under the lock) and returns the moves to append, in
        order; it may do the move elsewhere (the registry) before returning, and it must not
        use this store or open another transaction on its database. Each returned move is
        appended with ``from_version`` = the version before it, in the same transaction;
        returns the appended events (empty when ``decide`` returns none). If ``decide`` raises,
        nothing is appended and the exception propagates."""
        ...

    def history(self, model: str, alias: str | None = None) -> builtins.list[AliasEvent]:
        """Oldest first."""
        ...

    def version_at(self, model: str, alias: str, at: datetime) -> str | None: ...


class DatasetCatalog(Protocol):
    """Metadata of immutable dataset snapshots (the data lives in Parquet files)."""

    def add(self, record: DatasetRecord) -> DatasetRecord:
        """Insert; if a snapshot with this id exists, return the stored one unchanged."""
        ...

    def get(self, dataset_id: str) -> DatasetRecord | None: ...

    def list(self, family: str | None = None, limit: int = 100) -> list[DatasetRecord]: ...

    def update_manifest(self, dataset_id: str, manifest: Mapping[str, Any]) -> None:
        """Replace a snapshot's manifest (marks such as erasure; never its data)."""
        ...


T = TypeVar("T")


# -- the data half of the loop (implemented in storage/sql) -----------------------------------


class FeedbackAnalytics(Protocol):
    """Joins and aggregates over the prediction ledger and the feedback."""

    def labelled_predictions(
        self,
        model: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100_000,
    ) -> tuple[list[PredictionRecord], list[FeedbackRecord]]:
        """Served predictions of ``model`` that have feedback (oldest first), and that feedback."""
        ...

    def unlabelled_predictions(
        self, model: str, *, since: datetime | None = None, limit: int = 50_000
    ) -> list[PredictionRecord]:
        """Served predictions without label/correction/thumbs and not queued (newest first)."""
        ...

    def metrics(
        self, *, model: str | None, since: datetime, until: datetime, bucket_s: int
    ) -> dict[str, Any]:
        """Raw aggregates: ``by_arm``, ``ratings``, ``series``, ``served``, ``reached``."""
        ...


class LabelQueue(Protocol):
    """The labelling queue: tasks with a score, claimed with a lease."""

    def add(
        self, model: str, strategy: str, items: Sequence[tuple[str, str | None, float]]
    ) -> list[dict[str, Any]]: ...

    def claim(
        self, model: str, assignee: str, n: int, lease: timedelta
    ) -> list[dict[str, Any]]: ...

    def get(self, task_id: str) -> dict[str, Any]: ...

    def complete(self, task_id: str, labeller: str, feedback_id: str) -> dict[str, Any]: ...

    def list(self, model: str | None, status: str | None, limit: int) -> list[dict[str, Any]]: ...

    def stats(self, model: str | None) -> dict[str, Any]: ...


class SubjectStore(Protocol):
    """A data subject's rows across the ledger, feedback and labelling queue."""

    def count(self, subject_id: str) -> dict[str, int]: ...

    def export(self, subject_id: str) -> dict[str, list[dict[str, Any]]]: ...

    def erase(self, subject_id: str) -> dict[str, Any]:
        """Delete in one transaction; the result's ``served`` lists (model, version, input
        hash) of the deleted predictions."""
        ...


class PrivacyBudgetStore(Protocol):
    """Differential-privacy budgets per dataset snapshot."""

    def get(self, dataset_id: str) -> dict[str, Any] | None: ...

    def spend(
        self,
        dataset_id: str,
        epsilon: float,
        delta: float,
        work: Callable[[float, float, float, float], tuple[T, float, float]],
    ) -> tuple[T, dict[str, Any]]:
        """Run ``work(total ε, total δ, spent ε, spent δ)`` → (result, new spent ε, new spent
        δ) in one transaction; create the budget with ``epsilon``/``delta`` on first use."""
        ...

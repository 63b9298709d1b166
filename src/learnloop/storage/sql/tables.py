"""ORM tables of the SQL store. Changing one needs a new migration in ``migrations/versions``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC, on every backend."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: sa.JSON}


class MetaRow(Base):
    """Marks a database as learnloop's (``app = learnloop``) and records its schema."""

    __tablename__ = "learnloop_meta"
    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(256))


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (sa.Index("ix_jobs_claim", "status", "priority", "created_at"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(64))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(sa.String(16))
    priority: Mapped[int] = mapped_column(default=0)
    progress: Mapped[float] = mapped_column(default=0.0)
    message: Mapped[str] = mapped_column(sa.Text, default="")
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=3)
    control: Mapped[str | None] = mapped_column(sa.String(16))
    worker_id: Mapped[str | None] = mapped_column(sa.String(64))
    submitted_by: Mapped[str] = mapped_column(sa.String(128), default="")
    result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(sa.Text)
    traceback: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    event_seq: Mapped[int] = mapped_column(default=0)


class JobEventRow(Base):
    __tablename__ = "job_events"

    job_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(sa.String(16))
    message: Mapped[str] = mapped_column(sa.Text, default="")
    fraction: Mapped[float | None]
    metrics: Mapped[dict[str, Any] | None]


class WorkerRow(Base):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    host: Mapped[str] = mapped_column(sa.String(255))
    pid: Mapped[int]
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]


class AuditRow(Base):
    """Append-only: triggers created by the migration refuse UPDATE and DELETE."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(sa.String(128))
    action: Mapped[str] = mapped_column(sa.String(64), index=True)
    target: Mapped[str] = mapped_column(sa.String(255), index=True)
    detail: Mapped[dict[str, Any]]
    request_id: Mapped[str | None] = mapped_column(sa.String(64))


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(128), default="")
    role: Mapped[str] = mapped_column(sa.String(16))
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(sa.String(128), default="")
    revoked_at: Mapped[datetime | None]


class AliasEventRow(Base):
    __tablename__ = "alias_events"
    __table_args__ = (sa.Index("ix_alias_events_lookup", "model", "alias", "at"),)

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    model: Mapped[str] = mapped_column(sa.String(255))
    alias: Mapped[str] = mapped_column(sa.String(255))
    action: Mapped[str] = mapped_column(sa.String(16))
    from_version: Mapped[str | None] = mapped_column(sa.String(32))
    to_version: Mapped[str | None] = mapped_column(sa.String(32))
    actor: Mapped[str] = mapped_column(sa.String(128))
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    at: Mapped[datetime]


class AliasPointerRow(Base):
    """The head of one alias's history chain, and the row that alias moves lock: a move
    locks it (``SELECT ... FOR UPDATE``; SQLite's write lock), appends to ``alias_events``
    and sets ``version``/``seq`` here in the same transaction."""

    __tablename__ = "alias_pointers"

    model: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    alias: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    version: Mapped[str | None] = mapped_column(sa.String(32))
    seq: Mapped[int] = mapped_column(default=0)
    moved_at: Mapped[datetime | None]


class DatasetRow(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    family: Mapped[str] = mapped_column(sa.String(64), index=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    rows: Mapped[int]
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    source: Mapped[str] = mapped_column(sa.Text)
    path: Mapped[str] = mapped_column(sa.Text)
    schema: Mapped[dict[str, Any]]
    manifest: Mapped[dict[str, Any]]
    synthetic: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]


class DeploymentRow(Base):
    """Every revision of every model's deployment; the highest revision is in force."""

    __tablename__ = "deployments"
    __table_args__ = (sa.UniqueConstraint("model", "revision"),)

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    model: Mapped[str] = mapped_column(sa.String(255))
    revision: Mapped[int]
    spec: Mapped[dict[str, Any]]
    actor: Mapped[str] = mapped_column(sa.String(128))
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime]


class PredictionRow(Base):
    """The prediction ledger: one row per served (or shadow) output."""

    __tablename__ = "predictions"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    model: Mapped[str] = mapped_column(sa.String(255), index=True)
    version: Mapped[str] = mapped_column(sa.String(32))
    arm: Mapped[str] = mapped_column(sa.String(64))
    subject_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    input_hash: Mapped[str] = mapped_column(sa.String(32))
    inputs: Mapped[dict[str, Any] | None]
    output: Mapped[dict[str, Any]]
    latency_ms: Mapped[float]
    cache_hit: Mapped[bool]
    served_by: Mapped[dict[str, Any]]
    shadow_of: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    created_at: Mapped[datetime] = mapped_column(index=True)


class FeedbackRow(Base):
    """One feedback event. ``idem_key`` is the client's idempotency key, or the event id."""

    __tablename__ = "feedback"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    idem_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    type: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str | None] = mapped_column(sa.String(64))
    value: Mapped[float | None]
    payload: Mapped[dict[str, Any] | None]
    prediction_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    subject_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    model: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    client_ts: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(index=True)
    text: Mapped[str | None] = mapped_column(sa.Text)
    attributes: Mapped[dict[str, Any] | None]
    # SHA-256 of the event as sent (without its key): a key reused for another event is a conflict
    body_hash: Mapped[str | None] = mapped_column(sa.String(64))


class AlertRow(Base):
    """An alert raised by a monitor (confidence shift, …); ``key`` de-duplicates repeats."""

    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(32), index=True)
    model: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    severity: Mapped[str] = mapped_column(sa.String(16))
    message: Mapped[str] = mapped_column(sa.Text)
    details: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(index=True)


class LabelTaskRow(Base):
    """An item of the labelling queue (active learning)."""

    __tablename__ = "label_tasks"
    __table_args__ = (
        sa.UniqueConstraint("prediction_id"),
        sa.Index("ix_label_tasks_queue", "model", "status", "score"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    model: Mapped[str] = mapped_column(sa.String(255))
    prediction_id: Mapped[str] = mapped_column(sa.String(64))
    subject_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    strategy: Mapped[str] = mapped_column(sa.String(32))
    score: Mapped[float]
    status: Mapped[str] = mapped_column(sa.String(16))
    assignee: Mapped[str | None] = mapped_column(sa.String(128))
    assigned_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    labelled_at: Mapped[datetime | None]
    labelled_by: Mapped[str | None] = mapped_column(sa.String(128))
    feedback_id: Mapped[str | None] = mapped_column(sa.String(36))
    created_at: Mapped[datetime]


class PrivacyBudgetRow(Base):
    """The differential-privacy budget of one dataset snapshot (sequential composition)."""

    __tablename__ = "privacy_budgets"

    dataset_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    epsilon: Mapped[float]
    delta: Mapped[float]
    spent_epsilon: Mapped[float]
    spent_delta: Mapped[float]
    releases: Mapped[int]
    updated_at: Mapped[datetime]


class MonitorReportRow(Base):
    """A stored monitor report (drift, …) of a model, newest last."""

    __tablename__ = "monitor_reports"
    __table_args__ = (sa.Index("ix_monitor_reports_lookup", "model", "kind", "created_at"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    model: Mapped[str] = mapped_column(sa.String(255))
    kind: Mapped[str] = mapped_column(sa.String(32))
    verdict: Mapped[bool]
    summary: Mapped[dict[str, Any]]
    report: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class AlertChannelRow(Base):
    """Where alerts go: a webhook (POSTed JSON, retried) or the log."""

    __tablename__ = "alert_channels"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(128), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    url: Mapped[str | None] = mapped_column(sa.Text)
    kinds: Mapped[dict[str, Any]]  # {"kinds": [...]} or {"kinds": null} for every kind
    min_severity: Mapped[str] = mapped_column(sa.String(16))
    enabled: Mapped[bool]
    created_at: Mapped[datetime]


class AlertDeliveryRow(Base):
    """One alert to one channel: pending until delivered, retried with backoff, then failed."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (sa.Index("ix_alert_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    alert_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    channel_id: Mapped[str] = mapped_column(sa.String(36))
    status: Mapped[str] = mapped_column(sa.String(16))
    attempts: Mapped[int]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    next_attempt_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class SensitiveAttributesRow(Base):
    """Sensitive attributes of a subject (sex, age band, …), kept apart from features: only
    admins read or write them, and fairness evaluation joins them by subject id."""

    __tablename__ = "sensitive_attributes"

    subject_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    attributes: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class PolicyRow(Base):
    """A model's policy (the newest revision is in force)."""

    __tablename__ = "policies"
    __table_args__ = (sa.UniqueConstraint("model", "revision"),)

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    model: Mapped[str] = mapped_column(sa.String(255), index=True)
    revision: Mapped[int]
    spec: Mapped[dict[str, Any]]
    actor: Mapped[str] = mapped_column(sa.String(128))
    created_at: Mapped[datetime]


class PolicyStateRow(Base):
    """Where a model's loop stands: stage, candidate, the job or step in progress."""

    __tablename__ = "policy_state"

    model: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    stage: Mapped[str] = mapped_column(sa.String(32))
    data: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class PolicyEventRow(Base):
    """A decision of the policy engine, with its reason: the lineage of the loop."""

    __tablename__ = "policy_events"
    __table_args__ = (sa.Index("ix_policy_events_model", "model", "at"),)

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    model: Mapped[str] = mapped_column(sa.String(255))
    at: Mapped[datetime]
    stage: Mapped[str] = mapped_column(sa.String(32))
    action: Mapped[str] = mapped_column(sa.String(32))
    reason: Mapped[str] = mapped_column(sa.Text)
    details: Mapped[dict[str, Any]]


class LearnerAnswerRow(Base):
    """An answered attempt of a learner, for a knowledge-tracing model: the durable history
    that learner states are rebuilt from. ``idem_key`` de-duplicates retried submissions."""

    __tablename__ = "learner_answers"
    __table_args__ = (sa.Index("ix_learner_answers_learner", "model", "learner_id", "id"),)

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    model: Mapped[str] = mapped_column(sa.String(255))
    learner_id: Mapped[str] = mapped_column(sa.String(255))
    item_id: Mapped[str | None] = mapped_column(sa.String(200))
    skill_ids: Mapped[str | None] = mapped_column(sa.String(2000))
    correct: Mapped[int] = mapped_column(sa.SmallInteger)
    answered_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(sa.String(16))
    idem_key: Mapped[str | None] = mapped_column(sa.String(200), unique=True)

"""SQL implementations of the audit log, key store, alias history and dataset catalog."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from learnloop.core.errors import NotFound
from learnloop.core.records import AliasEvent, ApiKeyRecord, AuditEvent, DatasetRecord
from learnloop.logs import request_id_var
from learnloop.storage.sql.database import Database
from learnloop.storage.sql.tables import AliasEventRow, ApiKeyRow, AuditRow, DatasetRow, utcnow


class SqlAuditLog:
    """Append-only audit log (the database refuses UPDATE/DELETE on its table)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def append(
        self,
        actor: str,
        action: str,
        target: str,
        detail: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> AuditEvent:
        row = AuditRow(
            at=utcnow(),
            actor=actor,
            action=action,
            target=target,
            detail=dict(detail or {}),
            request_id=request_id or request_id_var.get(),
        )
        with self.db.write() as s:
            s.add(row)
            s.flush()
            return _audit(row)

    def list(
        self, *, target: str | None = None, action: str | None = None, limit: int = 100
    ) -> list[AuditEvent]:
        q = sa.select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if target is not None:
            q = q.where(AuditRow.target == target)
        if action is not None:
            q = q.where(AuditRow.action == action)
        with self.db.read() as s:
            return [_audit(r) for r in s.scalars(q)]


def _audit(r: AuditRow) -> AuditEvent:
    return AuditEvent(r.id, r.at, r.actor, r.action, r.target, dict(r.detail), r.request_id)


class SqlKeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self, key_id: str, name: str, role: str, key_hash: str, created_by: str
    ) -> ApiKeyRecord:
        row = ApiKeyRow(
            id=key_id,
            name=name,
            role=role,
            key_hash=key_hash,
            created_at=utcnow(),
            created_by=created_by,
        )
        with self.db.write() as s:
            s.add(row)
        return _key(row)

    def find(self, key_hash: str) -> ApiKeyRecord | None:
        q = sa.select(ApiKeyRow).where(
            ApiKeyRow.key_hash == key_hash, ApiKeyRow.revoked_at.is_(None)
        )
        with self.db.read() as s:
            row = s.scalars(q).first()
            return _key(row) if row else None

    def list(self) -> list[ApiKeyRecord]:
        with self.db.read() as s:
            return [_key(r) for r in s.scalars(sa.select(ApiKeyRow).order_by(ApiKeyRow.created_at))]

    def revoke(self, key_id: str) -> ApiKeyRecord | None:
        with self.db.write() as s:
            row = s.get(ApiKeyRow, key_id)
            if row is None:
                return None
            row.revoked_at = row.revoked_at or utcnow()
            return _key(row)


def _key(r: ApiKeyRow) -> ApiKeyRecord:
    return ApiKeyRecord(r.id, r.name, r.role, r.created_at, r.created_by, r.revoked_at)


class SqlAliasHistory:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self,
        model: str,
        alias: str,
        action: str,
        from_version: str | None,
        to_version: str | None,
        actor: str,
        reason: str,
    ) -> AliasEvent:
        row = AliasEventRow(
            model=model,
            alias=alias,
            action=action,
            from_version=from_version,
            to_version=to_version,
            actor=actor,
            reason=reason,
            at=utcnow(),
        )
        with self.db.write() as s:
            s.add(row)
            s.flush()
            return _alias(row)

    def history(self, model: str, alias: str | None = None) -> list[AliasEvent]:
        q = sa.select(AliasEventRow).where(AliasEventRow.model == model)
        if alias is not None:
            q = q.where(AliasEventRow.alias == alias)
        with self.db.read() as s:
            return [_alias(r) for r in s.scalars(q.order_by(AliasEventRow.id))]

    def version_at(self, model: str, alias: str, at: datetime) -> str | None:
        q = (
            sa.select(AliasEventRow.to_version)
            .where(
                AliasEventRow.model == model,
                AliasEventRow.alias == alias,
                AliasEventRow.at <= at,
            )
            .order_by(AliasEventRow.at.desc(), AliasEventRow.id.desc())
            .limit(1)
        )
        with self.db.read() as s:
            return s.scalars(q).first()


def _alias(r: AliasEventRow) -> AliasEvent:
    return AliasEvent(
        r.id, r.model, r.alias, r.action, r.from_version, r.to_version, r.actor, r.reason, r.at
    )


class SqlDatasetCatalog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, record: DatasetRecord) -> DatasetRecord:
        with self.db.write() as s:
            existing = s.get(DatasetRow, record.id)
            if existing is not None:
                return _dataset(existing)
            s.add(
                DatasetRow(
                    id=record.id,
                    family=record.family,
                    name=record.name,
                    rows=record.rows,
                    content_hash=record.content_hash,
                    source=record.source,
                    path=record.path,
                    schema={"columns": [list(c) for c in record.schema]},
                    manifest=dict(record.manifest),
                    synthetic=record.synthetic,
                    created_at=record.created_at,
                )
            )
        return record

    def get(self, dataset_id: str) -> DatasetRecord | None:
        with self.db.read() as s:
            row = s.get(DatasetRow, dataset_id)
            return _dataset(row) if row else None

    def list(self, family: str | None = None, limit: int = 100) -> list[DatasetRecord]:
        q = sa.select(DatasetRow).order_by(DatasetRow.created_at.desc()).limit(limit)
        if family is not None:
            q = q.where(DatasetRow.family == family)
        with self.db.read() as s:
            return [_dataset(r) for r in s.scalars(q)]

    def update_manifest(self, dataset_id: str, manifest: Mapping[str, Any]) -> None:
        with self.db.write() as s:
            row = s.get(DatasetRow, dataset_id)
            if row is None:
                raise NotFound("dataset", dataset_id)
            row.manifest = dict(manifest)


def _dataset(r: DatasetRow) -> DatasetRecord:
    return DatasetRecord(
        id=r.id,
        family=r.family,
        name=r.name,
        rows=r.rows,
        content_hash=r.content_hash,
        source=r.source,
        path=r.path,
        schema=tuple((str(n), str(t)) for n, t in r.schema["columns"]),
        created_at=r.created_at,
        synthetic=r.synthetic,
        manifest=dict(r.manifest),
    )

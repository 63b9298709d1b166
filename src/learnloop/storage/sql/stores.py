"""SQL implementations of the audit log, key store, alias history and dataset catalog."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from learnloop.core.errors import NotFound
from learnloop.core.records import AliasEvent, ApiKeyRecord, AuditEvent, DatasetRecord
from learnloop.core.stores import AliasMove
from learnloop.logs import request_id_var
from learnloop.storage.sql.database import Database
from learnloop.storage.sql.tables import (
    AliasEventRow,
    AliasPointerRow,
    ApiKeyRow,
    AuditRow,
    DatasetRow,
    utcnow,
)


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
    """Alias history as one chain per (model, alias), moved under a row lock.

    :meth:`move` runs in one write transaction: it inserts the alias's ``alias_pointers`` row
    if missing (``ON CONFLICT DO NOTHING``), locks it (``SELECT ... FOR UPDATE`` on
    PostgreSQL; on SQLite the transaction starts with ``BEGIN IMMEDIATE``, which already
    serialises every writer of the file), reads the chain, calls ``decide``, appends its moves
    with ``from_version`` = the chain's head and ``at`` strictly after the previous event's
    (a host with a clock behind another's cannot reorder the chain), and moves the pointer.
    Moves of other aliases do not wait on each other on PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self.db = db
        dialect = sqlite if db.is_sqlite else postgresql
        self._claim = dialect.insert(AliasPointerRow.__table__).on_conflict_do_nothing(
            index_elements=["model", "alias"]
        )

    def move(
        self,
        model: str,
        alias: str,
        decide: Callable[[list[AliasEvent]], Sequence[AliasMove]],
    ) -> list[AliasEvent]:
        with self.db.write() as s:
            s.execute(self._claim, {"model": model, "alias": alias, "version": None, "seq": 0})
            pointer = s.scalars(
                sa.select(AliasPointerRow)
                .where(AliasPointerRow.model == model, AliasPointerRow.alias == alias)
                .with_for_update()
            ).one()
            chain = [
                _alias(r)
                for r in s.scalars(
                    sa.select(AliasEventRow)
                    .where(AliasEventRow.model == model, AliasEventRow.alias == alias)
                    .order_by(AliasEventRow.id)
                )
            ]
            head, last_at = (chain[-1].to_version, chain[-1].at) if chain else (None, None)
            appended: list[AliasEvent] = []
            for move in decide(chain):
                at = utcnow()
                if last_at is not None and at <= last_at:
                    at = last_at + timedelta(microseconds=1)
                row = AliasEventRow(
                    model=model,
                    alias=alias,
                    action=move.action,
                    from_version=head,
                    to_version=move.to_version,
                    actor=move.actor,
                    reason=move.reason,
                    at=at,
                )
                s.add(row)
                s.flush()
                appended.append(_alias(row))
                head, last_at = move.to_version, at
            if appended:
                pointer.version, pointer.moved_at = head, last_at
                pointer.seq += len(appended)
            return appended

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

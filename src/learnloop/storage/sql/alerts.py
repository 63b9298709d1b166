"""Alerts raised by monitors; one row per distinct ``key`` (repeats are not raised again)."""

from __future__ import annotations

import builtins
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from learnloop.core.ids import new_id
from learnloop.storage.sql.database import Database
from learnloop.storage.sql.tables import AlertRow, utcnow


class SqlAlertStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        dialect = sqlite if db.is_sqlite else postgresql
        self._insert = dialect.insert(AlertRow.__table__).on_conflict_do_nothing(
            index_elements=["key"]
        )

    def raise_alert(
        self,
        key: str,
        kind: str,
        model: str | None,
        severity: str,
        message: str,
        details: dict[str, Any],
    ) -> bool:
        """Store the alert unless one with ``key`` exists; True when it is new."""
        with self.db.write() as s:
            result = s.connection().execute(
                self._insert,
                {
                    "id": new_id(),
                    "key": key,
                    "kind": kind,
                    "model": model,
                    "severity": severity,
                    "message": message,
                    "details": details,
                    "created_at": utcnow(),
                },
            )
            return bool(result.rowcount)

    def list(
        self, model: str | None = None, kind: str | None = None, limit: int = 100
    ) -> builtins.list[dict[str, Any]]:
        q = sa.select(AlertRow).order_by(AlertRow.created_at.desc()).limit(limit)
        if model is not None:
            q = q.where(AlertRow.model == model)
        if kind is not None:
            q = q.where(AlertRow.kind == kind)
        with self.db.read() as s:
            return [
                {
                    "id": r.id,
                    "kind": r.kind,
                    "model": r.model,
                    "severity": r.severity,
                    "message": r.message,
                    "details": r.details,
                    "created_at": r.created_at.isoformat(),
                }
                for r in s.scalars(q)
            ]

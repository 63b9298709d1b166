"""Policies (revisions), the loop state per model, and the decision log."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from learnloop.storage.sql.database import Database
from learnloop.storage.sql.tables import PolicyEventRow, PolicyRow, PolicyStateRow, utcnow


class SqlPolicyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def put(self, model: str, spec: dict[str, Any], actor: str) -> int:
        with self.db.write() as s:
            last = s.scalar(
                sa.select(sa.func.max(PolicyRow.revision)).where(PolicyRow.model == model)
            )
            revision = (last or 0) + 1
            s.add(
                PolicyRow(
                    model=model, revision=revision, spec=spec, actor=actor, created_at=utcnow()
                )
            )
            return revision

    def get(self, model: str) -> tuple[int, dict[str, Any]] | None:
        q = (
            sa.select(PolicyRow)
            .where(PolicyRow.model == model)
            .order_by(PolicyRow.revision.desc())
            .limit(1)
        )
        with self.db.read() as s:
            row = s.scalars(q).first()
            return (row.revision, dict(row.spec)) if row else None

    def models(self) -> list[str]:
        with self.db.read() as s:
            return sorted(set(s.scalars(sa.select(PolicyRow.model))))

    def state(self, model: str) -> tuple[str, dict[str, Any]]:
        with self.db.read() as s:
            row = s.get(PolicyStateRow, model)
            return (row.stage, dict(row.data)) if row else ("idle", {})

    def set_state(self, model: str, stage: str, data: dict[str, Any]) -> None:
        with self.db.write() as s:
            row = s.get(PolicyStateRow, model)
            if row is None:
                s.add(PolicyStateRow(model=model, stage=stage, data=data, updated_at=utcnow()))
            else:
                row.stage, row.data, row.updated_at = stage, data, utcnow()

    def event(
        self, model: str, stage: str, action: str, reason: str, details: dict[str, Any]
    ) -> None:
        with self.db.write() as s:
            s.add(
                PolicyEventRow(
                    model=model,
                    at=utcnow(),
                    stage=stage,
                    action=action,
                    reason=reason,
                    details=details,
                )
            )

    def events(self, model: str, limit: int = 1000) -> list[dict[str, Any]]:
        q = (
            sa.select(PolicyEventRow)
            .where(PolicyEventRow.model == model)
            .order_by(PolicyEventRow.at, PolicyEventRow.id)
            .limit(limit)
        )
        with self.db.read() as s:
            return [
                {
                    "at": r.at.isoformat(),
                    "stage": r.stage,
                    "action": r.action,
                    "reason": r.reason,
                    "details": r.details,
                }
                for r in s.scalars(q)
            ]

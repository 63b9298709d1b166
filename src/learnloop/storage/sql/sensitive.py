"""The sensitive-attributes store: subject id → attributes, upserted; also an erasure target."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from learnloop.storage.sql.database import Database
from learnloop.storage.sql.feedback import chunks
from learnloop.storage.sql.tables import SensitiveAttributesRow, utcnow


class SqlSensitiveStore:
    name = "sensitive_attributes"  # as an ErasureTarget

    def __init__(self, db: Database) -> None:
        self.db = db

    def put_many(self, records: Mapping[str, Mapping[str, Any]]) -> int:
        now = utcnow()
        with self.db.write() as s:
            for subject_id, attributes in records.items():
                row = s.get(SensitiveAttributesRow, subject_id)
                if row is None:
                    s.add(
                        SensitiveAttributesRow(
                            subject_id=subject_id, attributes=dict(attributes), updated_at=now
                        )
                    )
                else:
                    row.attributes, row.updated_at = dict(attributes), now
        return len(records)

    def get_many(self, subject_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        with self.db.read() as s:
            for part in chunks(list(dict.fromkeys(subject_ids))):
                q = sa.select(SensitiveAttributesRow).where(
                    SensitiveAttributesRow.subject_id.in_(part)
                )
                out.update({r.subject_id: dict(r.attributes) for r in s.scalars(q)})
        return out

    # -- ErasureTarget -----------------------------------------------------------------------

    def count(self, subject_id: str) -> int:
        return len(self.get_many([subject_id]))

    def export(self, subject_id: str) -> list[dict[str, Any]]:
        found = self.get_many([subject_id])
        return [{"subject_id": k, "attributes": v} for k, v in found.items()]

    def erase(self, subject_id: str) -> int:
        with self.db.write() as s:
            return int(
                s.execute(
                    sa.delete(SensitiveAttributesRow).where(
                        SensitiveAttributesRow.subject_id == subject_id
                    )
                ).rowcount
            )

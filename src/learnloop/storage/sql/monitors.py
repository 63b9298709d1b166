"""Stored monitor reports."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from learnloop.core.errors import NotFound
from learnloop.core.ids import new_id
from learnloop.storage.sql.database import Database
from learnloop.storage.sql.tables import MonitorReportRow, utcnow


def _json(r: MonitorReportRow, full: bool) -> dict[str, Any]:
    body = {
        "id": r.id,
        "model": r.model,
        "kind": r.kind,
        "verdict": r.verdict,
        "summary": r.summary,
        "created_at": r.created_at.isoformat(),
    }
    if full:
        body["report"] = r.report
    return body


class SqlMonitorReports:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self, model: str, kind: str, verdict: bool, summary: dict[str, Any], report: dict[str, Any]
    ) -> dict[str, Any]:
        row = MonitorReportRow(
            id=new_id(),
            model=model,
            kind=kind,
            verdict=verdict,
            summary=summary,
            report=report,
            created_at=utcnow(),
        )
        with self.db.write() as s:
            s.add(row)
            s.flush()
            return _json(row, full=False)

    def get(self, model: str, kind: str, report_id: str | None = None) -> dict[str, Any]:
        q = sa.select(MonitorReportRow).where(
            MonitorReportRow.model == model, MonitorReportRow.kind == kind
        )
        if report_id is not None:
            q = q.where(MonitorReportRow.id == report_id)
        q = q.order_by(MonitorReportRow.created_at.desc()).limit(1)
        with self.db.read() as s:
            row = s.scalars(q).first()
            if row is None:
                raise NotFound(f"{kind} report of model", report_id or model)
            return _json(row, full=True)

    def list(self, model: str, kind: str, limit: int = 50) -> list[dict[str, Any]]:
        q = (
            sa.select(MonitorReportRow)
            .where(MonitorReportRow.model == model, MonitorReportRow.kind == kind)
            .order_by(MonitorReportRow.created_at.desc())
            .limit(limit)
        )
        with self.db.read() as s:
            return [_json(r, full=False) for r in s.scalars(q)]

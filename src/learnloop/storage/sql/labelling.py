"""The labelling queue: tasks created by active-learning selection, claimed with a lease."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from learnloop.core.errors import Conflict, NotFound
from learnloop.core.ids import new_id
from learnloop.storage.sql.database import Database
from learnloop.storage.sql.tables import LabelTaskRow, utcnow


def task_json(r: LabelTaskRow, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    status = r.status
    if status == "assigned" and r.expires_at is not None and r.expires_at <= now:
        status = "expired"
    return {
        "id": r.id,
        "model": r.model,
        "prediction_id": r.prediction_id,
        "subject_id": r.subject_id,
        "strategy": r.strategy,
        "score": r.score,
        "status": status,
        "assignee": r.assignee,
        "assigned_at": r.assigned_at.isoformat() if r.assigned_at else None,
        "expires_at": r.expires_at.isoformat() if r.expires_at else None,
        "labelled_at": r.labelled_at.isoformat() if r.labelled_at else None,
        "labelled_by": r.labelled_by,
        "feedback_id": r.feedback_id,
        "created_at": r.created_at.isoformat(),
    }


class SqlLabelQueue:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self, model: str, strategy: str, items: Sequence[tuple[str, str | None, float]]
    ) -> builtins.list[dict[str, Any]]:
        """Queue (prediction id, subject id, score) items; ones already queued are skipped."""
        now = utcnow()
        with self.db.write() as s:
            ids = [p for p, _, _ in items]
            taken = set(
                s.scalars(
                    sa.select(LabelTaskRow.prediction_id).where(LabelTaskRow.prediction_id.in_(ids))
                )
            )
            rows = [
                LabelTaskRow(
                    id=new_id(),
                    model=model,
                    prediction_id=p,
                    subject_id=subject,
                    strategy=strategy,
                    score=float(score),
                    status="open",
                    created_at=now,
                )
                for p, subject, score in items
                if p not in taken
            ]
            s.add_all(rows)
            s.flush()
            return [task_json(r, now) for r in rows]

    def claim(
        self, model: str, assignee: str, n: int, lease: timedelta
    ) -> builtins.list[dict[str, Any]]:
        """Assign up to ``n`` tasks (open ones, or ones whose lease ran out), best score first."""
        now = utcnow()
        q = (
            sa.select(LabelTaskRow)
            .where(
                LabelTaskRow.model == model,
                sa.or_(
                    LabelTaskRow.status == "open",
                    sa.and_(LabelTaskRow.status == "assigned", LabelTaskRow.expires_at <= now),
                ),
            )
            .order_by(LabelTaskRow.score.desc(), LabelTaskRow.created_at)
            .limit(n)
        )
        if not self.db.is_sqlite:
            q = q.with_for_update(skip_locked=True)
        with self.db.write() as s:
            rows = list(s.scalars(q))
            for r in rows:
                r.status, r.assignee = "assigned", assignee
                r.assigned_at, r.expires_at = now, now + lease
            s.flush()
            return [task_json(r, now) for r in rows]

    def get(self, task_id: str) -> dict[str, Any]:
        with self.db.read() as s:
            row = s.get(LabelTaskRow, task_id)
            if row is None:
                raise NotFound("labelling task", task_id)
            return task_json(row)

    def complete(self, task_id: str, labeller: str, feedback_id: str) -> dict[str, Any]:
        with self.db.write() as s:
            row = s.get(LabelTaskRow, task_id)
            if row is None:
                raise NotFound("labelling task", task_id)
            if row.status == "labelled":
                raise Conflict(f"task {task_id} is already labelled by {row.labelled_by}")
            row.status, row.labelled_by, row.feedback_id = "labelled", labeller, feedback_id
            row.labelled_at = utcnow()
            s.flush()
            return task_json(row)

    def list(
        self, model: str | None, status: str | None, limit: int
    ) -> builtins.list[dict[str, Any]]:
        q = sa.select(LabelTaskRow)
        if model is not None:
            q = q.where(LabelTaskRow.model == model)
        now = utcnow()
        with self.db.read() as s:
            rows = [task_json(r, now) for r in s.scalars(q.order_by(LabelTaskRow.score.desc()))]
        if status is not None:
            rows = [r for r in rows if r["status"] == status]
        return rows[:limit]

    def stats(self, model: str | None) -> dict[str, Any]:
        q = sa.select(LabelTaskRow)
        if model is not None:
            q = q.where(LabelTaskRow.model == model)
        now = utcnow()
        by_status: dict[str, int] = {}
        by_strategy: dict[str, dict[str, int]] = {}
        by_labeller: dict[str, int] = {}
        waits: builtins.list[float] = []
        with self.db.read() as s:
            for r in s.scalars(q):
                t = task_json(r, now)
                by_status[t["status"]] = by_status.get(t["status"], 0) + 1
                strat = by_strategy.setdefault(r.strategy, {"tasks": 0, "labelled": 0})
                strat["tasks"] += 1
                if r.status == "labelled" and r.labelled_at is not None:
                    strat["labelled"] += 1
                    by_labeller[r.labelled_by or ""] = by_labeller.get(r.labelled_by or "", 0) + 1
                    waits.append((r.labelled_at - r.created_at).total_seconds())
        total = sum(by_status.values())
        waits.sort()
        return {
            "model": model,
            "tasks": total,
            "by_status": by_status,
            "by_strategy": by_strategy,
            "by_labeller": by_labeller,
            "labelled_fraction": round(by_status.get("labelled", 0) / total, 6) if total else None,
            "median_time_to_label_s": waits[len(waits) // 2] if waits else None,
        }

"""A subject's rows across the SQL stores (ledger, feedback, labelling queue): find, export and
erase them in one transaction."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from learnloop.storage.sql.database import Database
from learnloop.storage.sql.feedback import chunks
from learnloop.storage.sql.tables import FeedbackRow, LabelTaskRow, PredictionRow


def _jsonable(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        out[column.key] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


class SqlSubjectStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _prediction_ids(self, s: Any, subject_id: str) -> list[str]:
        q = sa.select(PredictionRow.id).where(PredictionRow.subject_id == subject_id)
        return list(s.scalars(q))

    def _feedback_filter(self, subject_id: str, prediction_ids: list[str]) -> list[Any]:
        conditions: list[Any] = [FeedbackRow.subject_id == subject_id]
        conditions += [FeedbackRow.prediction_id.in_(part) for part in chunks(prediction_ids)]
        return conditions

    def count(self, subject_id: str) -> dict[str, int]:
        """Rows that still hold the subject, per table (all zero after an erasure)."""
        with self.db.read() as s:
            ids = self._prediction_ids(s, subject_id)
            feedback = s.scalar(
                sa.select(sa.func.count())
                .select_from(FeedbackRow)
                .where(sa.or_(*self._feedback_filter(subject_id, ids)))
            )
            tasks = s.scalar(
                sa.select(sa.func.count())
                .select_from(LabelTaskRow)
                .where(LabelTaskRow.subject_id == subject_id)
            )
        return {
            "predictions": len(ids),
            "feedback": int(feedback or 0),
            "label_tasks": int(tasks or 0),
        }

    def export(self, subject_id: str) -> dict[str, list[dict[str, Any]]]:
        with self.db.read() as s:
            ids = self._prediction_ids(s, subject_id)
            predictions = [
                _jsonable(r)
                for part in chunks(ids)
                for r in s.scalars(sa.select(PredictionRow).where(PredictionRow.id.in_(part)))
            ]
            feedback = [
                _jsonable(r)
                for r in s.scalars(
                    sa.select(FeedbackRow).where(sa.or_(*self._feedback_filter(subject_id, ids)))
                )
            ]
            tasks = [
                _jsonable(r)
                for r in s.scalars(
                    sa.select(LabelTaskRow).where(LabelTaskRow.subject_id == subject_id)
                )
            ]
        return {"predictions": predictions, "feedback": feedback, "label_tasks": tasks}

    def erase(self, subject_id: str) -> dict[str, Any]:
        """Delete the subject's predictions, the feedback about them or by the subject, and
        their labelling tasks, in one transaction. Returns counts and the (model, version,
        input hash) of the deleted predictions (to drop cached responses)."""
        with self.db.write() as s:
            rows = s.execute(
                sa.select(
                    PredictionRow.id,
                    PredictionRow.model,
                    PredictionRow.version,
                    PredictionRow.input_hash,
                ).where(PredictionRow.subject_id == subject_id)
            ).all()
            ids = [r.id for r in rows]
            feedback = s.execute(
                sa.delete(FeedbackRow).where(sa.or_(*self._feedback_filter(subject_id, ids)))
            ).rowcount
            tasks = 0
            for condition in [LabelTaskRow.subject_id == subject_id] + [
                LabelTaskRow.prediction_id.in_(part) for part in chunks(ids)
            ]:
                tasks += s.execute(sa.delete(LabelTaskRow).where(condition)).rowcount
            # shadow rows of the subject's predictions carry their inputs too
            shadows = 0
            for part in chunks(ids):
                shadows += s.execute(
                    sa.delete(PredictionRow).where(PredictionRow.shadow_of.in_(part))
                ).rowcount
            predictions = s.execute(
                sa.delete(PredictionRow).where(PredictionRow.subject_id == subject_id)
            ).rowcount
        return {
            "predictions": int(predictions) + int(shadows),
            "feedback": int(feedback),
            "label_tasks": int(tasks),
            "served": [(r.model, r.version, r.input_hash) for r in rows],
        }

"""Learners' answered attempts for knowledge-tracing models; also an erasure target.

Rows are appended in one transaction per call (acknowledged only after commit); an
``idem_key`` already stored is skipped, so a retried submission is not counted twice.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from learnloop.core.errors import Conflict
from learnloop.storage.sql.database import Database
from learnloop.storage.sql.feedback import chunks
from learnloop.storage.sql.tables import LearnerAnswerRow


@dataclass(frozen=True)
class LearnerAnswer:
    model: str
    learner_id: str
    item_id: str | None
    skill_ids: str | None  # joined by ';'
    correct: int
    answered_at: datetime
    source: str = "answers"
    idem_key: str | None = None


class SqlLearnerAnswers:
    name = "learner_answers"  # as an ErasureTarget

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, answers: Sequence[LearnerAnswer]) -> list[bool]:
        """Store ``answers``; per answer, whether it was stored (False: a duplicate key)."""
        for attempt in range(3):
            try:
                return self._add(answers)
            except IntegrityError:  # a concurrent writer stored one of our keys first
                if attempt == 2:
                    raise Conflict("answers were stored concurrently; retry") from None
        raise AssertionError("unreachable")

    def _add(self, answers: Sequence[LearnerAnswer]) -> list[bool]:
        keys = [a.idem_key for a in answers if a.idem_key]
        with self.db.write() as s:
            seen: set[str] = set()
            for part in chunks(keys):
                q = sa.select(LearnerAnswerRow.idem_key).where(LearnerAnswerRow.idem_key.in_(part))
                seen.update(k for k in s.scalars(q) if k)
            fresh = []
            stored = []
            for a in answers:
                if a.idem_key and a.idem_key in seen:
                    stored.append(False)
                    continue
                stored.append(True)
                if a.idem_key:
                    seen.add(a.idem_key)
                fresh.append(
                    LearnerAnswerRow(
                        model=a.model,
                        learner_id=a.learner_id,
                        item_id=a.item_id,
                        skill_ids=a.skill_ids,
                        correct=a.correct,
                        answered_at=a.answered_at,
                        source=a.source,
                        idem_key=a.idem_key,
                    )  # fmt: skip
                )
            s.add_all(fresh)
        return stored

    def history(self, model: str, learner_id: str, limit: int = 100_000) -> list[LearnerAnswer]:
        """The learner's last ``limit`` answers for ``model``, oldest first."""
        q = (
            sa.select(LearnerAnswerRow)
            .where(LearnerAnswerRow.model == model, LearnerAnswerRow.learner_id == learner_id)
            .order_by(LearnerAnswerRow.id.desc())
            .limit(limit)
        )
        with self.db.read() as s:
            rows = list(s.scalars(q))
        return [_answer(r) for r in reversed(rows)]

    def table(self, model: str, since: datetime | None = None) -> builtins.list[dict[str, Any]]:
        """Every answer of ``model`` (from ``since``) as rows, in storage order."""
        q = sa.select(LearnerAnswerRow).where(LearnerAnswerRow.model == model)
        if since is not None:
            q = q.where(LearnerAnswerRow.answered_at >= since)
        with self.db.read() as s:
            return [
                {
                    "learner_id": r.learner_id,
                    "item_id": r.item_id,
                    "skill_ids": r.skill_ids,
                    "correct": r.correct,
                    "timestamp": r.answered_at,
                    "answer_id": r.id,
                }
                for r in s.scalars(q.order_by(LearnerAnswerRow.id))
            ]

    # -- ErasureTarget (learner ids are subject ids) -------------------------------------------

    def count(self, subject_id: str) -> int:
        q = sa.select(sa.func.count()).where(LearnerAnswerRow.learner_id == subject_id)
        with self.db.read() as s:
            return int(s.scalar(q) or 0)

    def export(self, subject_id: str) -> builtins.list[dict[str, Any]]:
        q = (
            sa.select(LearnerAnswerRow)
            .where(LearnerAnswerRow.learner_id == subject_id)
            .order_by(LearnerAnswerRow.id)
        )
        with self.db.read() as s:
            return [
                {
                    "model": r.model,
                    "item_id": r.item_id,
                    "skill_ids": r.skill_ids,
                    "correct": r.correct,
                    "answered_at": r.answered_at.isoformat(),
                    "source": r.source,
                }
                for r in s.scalars(q)
            ]

    def erase(self, subject_id: str) -> int:
        with self.db.write() as s:
            result = s.execute(
                sa.delete(LearnerAnswerRow).where(LearnerAnswerRow.learner_id == subject_id)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]


def _answer(r: LearnerAnswerRow) -> LearnerAnswer:
    return LearnerAnswer(
        r.model, r.learner_id, r.item_id, r.skill_ids, int(r.correct), r.answered_at, r.source,
        r.idem_key,
    )  # fmt: skip

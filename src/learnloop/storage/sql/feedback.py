"""SQL store of the feedback ledger (insert-or-skip by idempotency key, in one transaction)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from learnloop.core.feedback import FeedbackRecord
from learnloop.core.ledger import PredictionRecord
from learnloop.storage.sql.database import Database
from learnloop.storage.sql.serving import _prediction
from learnloop.storage.sql.tables import FeedbackRow, LabelTaskRow, PredictionRow

CHUNK = 2_000  # bound parameters per IN (...) query


def chunks(items: Sequence[str], size: int = CHUNK) -> builtins.list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class SqlFeedbackStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        dialect = sqlite if db.is_sqlite else postgresql
        self._insert = dialect.insert(FeedbackRow.__table__).on_conflict_do_nothing(
            index_elements=["idem_key"]
        )

    def insert(
        self, records: Sequence[FeedbackRecord]
    ) -> tuple[set[str], dict[str, tuple[str, str | None]]]:
        if not records:
            return set(), {}
        rows = [_row(r) for r in records]
        # events without a client key have their fresh id as key: they cannot collide
        client_keys = [r.idem_key for r in records if r.idem_key != r.id]
        with self.db.write() as s:
            conn = s.connection()
            conn.execute(self._insert, rows)
            stored = _stored(conn, client_keys)
        inserted = {r.idem_key for r in records if stored.get(r.idem_key, (r.id,))[0] == r.id}
        skipped = {k: v for k, v in stored.items() if k not in inserted}
        return inserted, skipped

    def stored_keys(self, keys: Sequence[str]) -> dict[str, tuple[str, str | None]]:
        with self.db.read() as s:
            return _stored(s.connection(), list(dict.fromkeys(keys)))

    def known_predictions(self, prediction_ids: Sequence[str]) -> set[str]:
        unique = list(dict.fromkeys(prediction_ids))
        found: set[str] = set()
        with self.db.read() as s:
            for part in chunks(unique):
                found.update(
                    s.scalars(sa.select(PredictionRow.id).where(PredictionRow.id.in_(part)))
                )
        return found

    def get(self, event_id: str) -> FeedbackRecord | None:
        with self.db.read() as s:
            row = s.get(FeedbackRow, event_id)
            return _record(row) if row else None

    def list(
        self,
        *,
        prediction_id: str | None = None,
        subject_id: str | None = None,
        model: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> builtins.list[FeedbackRecord]:
        q = sa.select(FeedbackRow)
        if prediction_id is not None:
            q = q.where(FeedbackRow.prediction_id == prediction_id)
        if subject_id is not None:
            q = q.where(FeedbackRow.subject_id == subject_id)
        if model is not None:
            q = q.where(FeedbackRow.model == model)
        if since is not None:
            q = q.where(FeedbackRow.received_at >= since)
        q = q.order_by(FeedbackRow.received_at.desc(), FeedbackRow.id.desc()).limit(limit)
        with self.db.read() as s:
            return [_record(r) for r in s.scalars(q)]

    def for_predictions(self, prediction_ids: Sequence[str]) -> builtins.list[FeedbackRecord]:
        out: builtins.list[FeedbackRecord] = []
        unique = list(dict.fromkeys(prediction_ids))
        with self.db.read() as s:
            for part in chunks(unique):
                q = sa.select(FeedbackRow).where(FeedbackRow.prediction_id.in_(part))
                out.extend(_record(r) for r in s.scalars(q))
        return out

    def count(self) -> int:
        with self.db.read() as s:
            return int(s.scalar(sa.select(sa.func.count()).select_from(FeedbackRow)) or 0)


def _stored(conn: sa.Connection, keys: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    found: dict[str, tuple[str, str | None]] = {}
    for part in chunks(keys):
        q = sa.select(FeedbackRow.idem_key, FeedbackRow.id, FeedbackRow.body_hash).where(
            FeedbackRow.idem_key.in_(part)
        )
        found.update({k: (i, h) for k, i, h in conn.execute(q)})
    return found


def _row(r: FeedbackRecord) -> dict[str, object]:
    return {
        "id": r.id,
        "idem_key": r.idem_key,
        "type": r.type,
        "name": r.name,
        "value": r.value,
        "payload": r.payload,
        "prediction_id": r.prediction_id,
        "subject_id": r.subject_id,
        "model": r.model,
        "client_ts": r.client_ts,
        "received_at": r.received_at,
        "text": r.text,
        "attributes": dict(r.attributes) if r.attributes is not None else None,
        "body_hash": r.body_hash,
    }


def _record(r: FeedbackRow) -> FeedbackRecord:
    return FeedbackRecord(
        id=r.id,
        idem_key=r.idem_key,
        type=r.type,
        name=r.name,
        value=r.value,
        payload=r.payload,
        prediction_id=r.prediction_id,
        subject_id=r.subject_id,
        model=r.model,
        client_ts=r.client_ts,
        received_at=r.received_at,
        text=r.text,
        attributes=r.attributes,
        body_hash=r.body_hash,
    )


class SqlFeedbackAnalytics:
    """Joins and aggregates over the ledger and the feedback, computed in the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def labelled_predictions(
        self,
        model: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100_000,
    ) -> tuple[builtins.list[PredictionRecord], builtins.list[FeedbackRecord]]:
        """Served predictions of ``model`` that have feedback (oldest first), and that feedback."""
        has_feedback = sa.exists().where(FeedbackRow.prediction_id == PredictionRow.id)
        q = sa.select(PredictionRow).where(
            PredictionRow.model == model, PredictionRow.shadow_of.is_(None), has_feedback
        )
        if since is not None:
            q = q.where(PredictionRow.created_at >= since)
        if until is not None:
            q = q.where(PredictionRow.created_at < until)
        q = q.order_by(PredictionRow.created_at, PredictionRow.id).limit(limit)
        with self.db.read() as s:
            predictions = [_prediction(r) for r in s.scalars(q)]
            events: builtins.list[FeedbackRecord] = []
            for part in chunks([p.id for p in predictions]):
                fq = sa.select(FeedbackRow).where(FeedbackRow.prediction_id.in_(part))
                events.extend(_record(r) for r in s.scalars(fq))
        return predictions, events

    def unlabelled_predictions(
        self, model: str, *, since: datetime | None = None, limit: int = 50_000
    ) -> builtins.list[PredictionRecord]:
        """Served predictions of ``model`` with no label, correction or thumbs yet, and not in
        the labelling queue: the active-learning pool (newest first)."""
        labelled = sa.exists().where(
            FeedbackRow.prediction_id == PredictionRow.id,
            FeedbackRow.type.in_(("label", "correction", "thumbs")),
        )
        queued = sa.exists().where(LabelTaskRow.prediction_id == PredictionRow.id)
        q = sa.select(PredictionRow).where(
            PredictionRow.model == model,
            PredictionRow.shadow_of.is_(None),
            ~labelled,
            ~queued,
        )
        if since is not None:
            q = q.where(PredictionRow.created_at >= since)
        q = q.order_by(PredictionRow.created_at.desc()).limit(limit)
        with self.db.read() as s:
            return [_prediction(r) for r in s.scalars(q)]

    def _epoch_bucket(self, column: sa.ColumnElement[datetime], seconds: int) -> Any:
        if self.db.is_sqlite:
            epoch = sa.cast(sa.func.strftime("%s", column), sa.Integer)
            return sa.cast(epoch / seconds, sa.Integer) * seconds
        return (
            sa.cast(sa.func.floor(sa.extract("epoch", column) / seconds), sa.BigInteger) * seconds
        )

    def metrics(
        self,
        *,
        model: str | None,
        since: datetime,
        until: datetime,
        bucket_s: int,
    ) -> dict[str, Any]:
        f, p = FeedbackRow, PredictionRow
        model_col = sa.func.coalesce(p.model, f.model)
        window = [f.received_at >= since, f.received_at < until]
        if model is not None:
            window.append(model_col == model)
        joined = sa.select().select_from(f).outerjoin(p, p.id == f.prediction_id)
        by_arm = (
            joined.add_columns(
                model_col.label("model"),
                p.version,
                p.arm,
                f.type,
                f.name,
                sa.func.count().label("n"),
                sa.func.avg(f.value).label("mean"),
                sa.func.count(sa.distinct(p.id)).label("predictions"),
                sa.func.sum(
                    sa.case((sa.and_(p.id.is_(None), f.prediction_id.is_not(None)), 1), else_=0)
                ).label("orphans"),
            )
            .where(*window)
            .group_by(model_col, p.version, p.arm, f.type, f.name)
        )
        ratings = (
            joined.add_columns(model_col.label("model"), f.value, sa.func.count().label("n"))
            .where(*window, f.type == "rating")
            .group_by(model_col, f.value)
        )
        reached = (
            joined.add_columns(
                model_col.label("model"),
                p.version,
                p.arm,
                sa.func.count(sa.distinct(p.id)).label("n"),
            )
            .where(*window, p.id.is_not(None))
            .group_by(model_col, p.version, p.arm)
        )
        bucket = self._epoch_bucket(f.received_at, bucket_s).label("bucket")
        series = (
            joined.add_columns(bucket, f.type, sa.func.count().label("n"), sa.func.avg(f.value))
            .where(*window)
            .group_by(bucket, f.type)
            .order_by(bucket)
        )
        served = sa.select(p.model, p.version, p.arm, sa.func.count().label("n")).where(
            p.created_at >= since, p.created_at < until, p.shadow_of.is_(None)
        )
        if model is not None:
            served = served.where(p.model == model)
        served = served.group_by(p.model, p.version, p.arm)
        with self.db.read() as s:
            return {
                "by_arm": [dict(r._mapping) for r in s.execute(by_arm)],
                "ratings": [dict(r._mapping) for r in s.execute(ratings)],
                "series": [
                    {"bucket": int(b), "type": t, "n": int(n), "mean": m}
                    for b, t, n, m in s.execute(series)
                ],
                "served": [dict(r._mapping) for r in s.execute(served)],
                "reached": [dict(r._mapping) for r in s.execute(reached)],
            }

"""SQL stores of the serving side: deployment revisions and the prediction ledger."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import aliased

from learnloop.core.deployments import Deployment, DeploymentSpec
from learnloop.core.errors import Conflict, StorageError
from learnloop.core.ledger import PredictionRecord
from learnloop.storage.sql.database import Database
from learnloop.storage.sql.tables import DeploymentRow, PredictionRow, utcnow


class SqlDeploymentStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def current(self, model: str) -> Deployment | None:
        q = (
            sa.select(DeploymentRow)
            .where(DeploymentRow.model == model)
            .order_by(DeploymentRow.revision.desc())
            .limit(1)
        )
        with self.db.read() as s:
            row = s.scalars(q).first()
            return _deployment(row) if row else None

    def history(self, model: str) -> list[Deployment]:
        q = sa.select(DeploymentRow).where(DeploymentRow.model == model)
        with self.db.read() as s:
            return [_deployment(r) for r in s.scalars(q.order_by(DeploymentRow.revision))]

    def add(
        self, model: str, spec: DeploymentSpec, actor: str, reason: str, expected: int | None
    ) -> Deployment:
        """Append revision ``expected + 1``; ``Conflict`` if someone else wrote one first."""
        with self.db.write() as s:
            last = s.scalar(
                sa.select(sa.func.max(DeploymentRow.revision)).where(DeploymentRow.model == model)
            )
            if expected is not None and (last or 0) != expected:
                raise Conflict(
                    f"deployment of {model!r} changed (now revision {last}); reload and retry"
                )
            row = DeploymentRow(
                model=model,
                revision=(last or 0) + 1,
                spec=spec.model_dump(mode="json"),
                actor=actor,
                reason=reason,
                created_at=utcnow(),
            )
            s.add(row)
            s.flush()
            return _deployment(row)


def _deployment(r: DeploymentRow) -> Deployment:
    try:
        spec = DeploymentSpec.model_validate(r.spec)
    except ValidationError as e:  # written before today's rules or by hand: never served
        raise StorageError(
            f"stored deployment revision {r.revision} of {r.model!r} breaks the deployment "
            f"rules ({e.error_count()} problems); apply a new deployment"
        ) from e
    return Deployment(
        model=r.model,
        revision=r.revision,
        spec=spec,
        actor=r.actor,
        reason=r.reason,
        created_at=r.created_at,
    )


class SqlPredictionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def append_many(self, records: Sequence[PredictionRecord]) -> None:
        if not records:
            return
        rows = [
            {
                "id": r.id,
                "model": r.model,
                "version": r.version,
                "arm": r.arm,
                "subject_id": r.subject_id,
                "input_hash": r.input_hash,
                "inputs": dict(r.inputs) if r.inputs is not None else None,
                "output": dict(r.output),
                "latency_ms": r.latency_ms,
                "cache_hit": r.cache_hit,
                "served_by": dict(r.served_by),
                "shadow_of": r.shadow_of,
                "created_at": r.created_at,
            }
            for r in records
        ]
        with self.db.write() as s:  # Core executemany: no ORM bookkeeping per row
            s.connection().execute(PredictionRow.__table__.insert(), rows)

    def get(self, prediction_id: str) -> PredictionRecord | None:
        with self.db.read() as s:
            row = s.get(PredictionRow, prediction_id)
            return _prediction(row) if row else None

    def get_many(self, prediction_ids: Sequence[str]) -> builtins.list[PredictionRecord]:
        unique = list(dict.fromkeys(prediction_ids))
        out: builtins.list[PredictionRecord] = []
        with self.db.read() as s:
            for i in range(0, len(unique), 2_000):
                q = sa.select(PredictionRow).where(PredictionRow.id.in_(unique[i : i + 2_000]))
                out.extend(_prediction(r) for r in s.scalars(q))
        return out

    def list(
        self,
        model: str,
        *,
        limit: int = 100,
        shadow: bool | None = False,
        since: datetime | None = None,
    ) -> builtins.list[PredictionRecord]:
        q = sa.select(PredictionRow).where(PredictionRow.model == model)
        if shadow is True:
            q = q.where(PredictionRow.shadow_of.is_not(None))
        elif shadow is False:
            q = q.where(PredictionRow.shadow_of.is_(None))
        if since is not None:
            q = q.where(PredictionRow.created_at >= since)
        q = q.order_by(PredictionRow.created_at.desc(), PredictionRow.id.desc()).limit(limit)
        with self.db.read() as s:
            return [_prediction(r) for r in s.scalars(q)]

    def shadow_pairs(
        self, model: str, limit: int = 10_000
    ) -> builtins.list[tuple[PredictionRecord, PredictionRecord]]:
        served = aliased(PredictionRow)
        shadow = aliased(PredictionRow)
        q = (
            sa.select(served, shadow)
            .join(shadow, shadow.shadow_of == served.id)
            .where(served.model == model)
            .order_by(served.created_at.desc())
            .limit(limit)
        )
        with self.db.read() as s:
            return [(_prediction(a), _prediction(b)) for a, b in s.execute(q)]


def _prediction(r: PredictionRow) -> PredictionRecord:
    return PredictionRecord(
        id=r.id,
        model=r.model,
        version=r.version,
        arm=r.arm,
        subject_id=r.subject_id,
        input_hash=r.input_hash,
        inputs=r.inputs,
        output=r.output,
        latency_ms=r.latency_ms,
        cache_hit=r.cache_hit,
        served_by=r.served_by,
        created_at=r.created_at,
        shadow_of=r.shadow_of,
    )

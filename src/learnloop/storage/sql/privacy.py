"""Differential-privacy budgets per dataset snapshot, spent atomically."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from learnloop.storage.sql.database import Database
from learnloop.storage.sql.tables import PrivacyBudgetRow, utcnow

T = TypeVar("T")


class SqlPrivacyBudgets:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, dataset_id: str) -> dict[str, Any] | None:
        with self.db.read() as s:
            row = s.get(PrivacyBudgetRow, dataset_id)
            return _json(row) if row else None

    def spend(
        self,
        dataset_id: str,
        epsilon: float,
        delta: float,
        work: Callable[[float, float, float, float], tuple[T, float, float]],
    ) -> tuple[T, dict[str, Any]]:
        """Run ``work(total_eps, total_delta, spent_eps, spent_delta)`` inside one write
        transaction (row-locked on PostgreSQL); it returns (result, new spent ε, new spent δ).
        A budget row is created with ``epsilon``/``delta`` as totals on first use. If ``work``
        raises, nothing is spent."""
        with self.db.write() as s:
            row = s.get(PrivacyBudgetRow, dataset_id, with_for_update=not self.db.is_sqlite)
            if row is None:
                row = PrivacyBudgetRow(
                    dataset_id=dataset_id,
                    epsilon=epsilon,
                    delta=delta,
                    spent_epsilon=0.0,
                    spent_delta=0.0,
                    releases=0,
                    updated_at=utcnow(),
                )
                s.add(row)
            result, spent_eps, spent_delta = work(
                row.epsilon, row.delta, row.spent_epsilon, row.spent_delta
            )
            row.spent_epsilon, row.spent_delta = spent_eps, spent_delta
            row.releases += 1
            row.updated_at = utcnow()
            s.flush()
            return result, _json(row)


def _json(row: PrivacyBudgetRow) -> dict[str, Any]:
    return {
        "dataset_id": row.dataset_id,
        "epsilon": row.epsilon,
        "delta": row.delta,
        "spent_epsilon": row.spent_epsilon,
        "spent_delta": row.spent_delta,
        "remaining_epsilon": max(row.epsilon - row.spent_epsilon, 0.0),
        "remaining_delta": max(row.delta - row.spent_delta, 0.0),
        "releases": row.releases,
        "updated_at": row.updated_at.isoformat(),
    }

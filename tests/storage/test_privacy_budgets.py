"""DP budgets on SQLite and PostgreSQL: charged atomically with the release, all or nothing,
and the noise of the released answers has the scale ε implies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from learnloop.core.errors import Conflict
from learnloop.loop.privacy.dp import DpQuery, PrivacyBudget, release
from learnloop.storage.sql.database import Database
from learnloop.storage.sql.privacy import SqlPrivacyBudgets


def charge(budgets: SqlPrivacyBudgets, frame: pd.DataFrame, queries: list[DpQuery], seed: int):  # type: ignore[no-untyped-def]
    def work(eps: float, delta: float, spent_e: float, spent_d: float):  # type: ignore[no-untyped-def]
        budget = PrivacyBudget(eps, delta, spent_e, spent_d)
        answers = release(frame, queries, budget, seed=seed)
        return answers, budget.spent_epsilon, budget.spent_delta

    return budgets.spend("ds-test", 1.0, 1e-6, work)


def test_budget_is_spent_atomically(db: Database) -> None:
    budgets = SqlPrivacyBudgets(db)
    frame = pd.DataFrame({"x": np.arange(1000) % 7})
    answers, state = charge(budgets, frame, [DpQuery("count", epsilon=0.4)], seed=1)
    assert state["spent_epsilon"] == pytest.approx(0.4) and state["releases"] == 1
    assert answers[0].noise_scale == pytest.approx(1 / 0.4)
    with pytest.raises(Conflict):
        charge(budgets, frame, [DpQuery("count", epsilon=0.4), DpQuery("count", epsilon=0.4)], 2)
    after = budgets.get("ds-test")
    assert after is not None and after["spent_epsilon"] == pytest.approx(0.4)  # nothing spent
    assert after["releases"] == 1
    _, state = charge(budgets, frame, [DpQuery("count", epsilon=0.6)], seed=3)
    assert state["remaining_epsilon"] == pytest.approx(0.0)


def test_released_noise_matches_epsilon() -> None:
    frame = pd.DataFrame({"x": np.zeros(500)})
    epsilon = 0.5
    errors = []
    for seed in range(1500):
        budget = PrivacyBudget(epsilon)
        (answer,) = release(frame, [DpQuery("count", epsilon=epsilon)], budget, seed=seed)
        errors.append(float(answer.value) - 500)  # type: ignore[arg-type]
    # Laplace(b = 1/ε) has standard deviation √2·b
    assert np.std(errors) == pytest.approx(np.sqrt(2) / epsilon, rel=0.08)

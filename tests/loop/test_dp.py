"""Differentially private releases: noise calibrated to ε, the budget, and query validation."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from learnloop.core.errors import Conflict, InvalidInput
from learnloop.loop.privacy.dp import BudgetExceeded, DpQuery, PrivacyBudget, release

RUNS = 4000


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "kind": rng.choice(["L", "M", "H"], size=500, p=[0.6, 0.3, 0.1]),
            "wear": rng.integers(0, 250, size=500).astype(float),
        }
    )


def _errors(frame: pd.DataFrame, query: DpQuery, truth: float, batch: int = 1) -> np.ndarray:
    """``RUNS`` answers minus the truth: ``RUNS / batch`` seeds, ``batch`` copies per release."""
    values = []
    for seed in range(RUNS // batch):
        budget = PrivacyBudget(epsilon=batch * query.epsilon, delta=batch * query.delta)
        values += [answer.value for answer in release(frame, [query] * batch, budget, seed=seed)]
    return np.array(values) - truth


def _analytic_sigma(epsilon: float, delta: float, sensitivity: float) -> float:
    """Balle & Wang (2018), Theorem 8: the smallest σ whose privacy loss meets (ε, δ)."""

    def excess(sigma: float) -> float:
        a = sensitivity / (2 * sigma)
        b = epsilon * sigma / sensitivity
        return norm.cdf(a - b) - math.exp(epsilon) * norm.cdf(-a - b) - delta

    return brentq(excess, 1e-6, 1e6, xtol=1e-12)


def test_laplace_count_noise_matches_epsilon(frame: pd.DataFrame) -> None:
    epsilon = 0.5
    errors = _errors(frame, DpQuery("count", epsilon=epsilon), len(frame))
    expected = math.sqrt(2) * 1.0 / epsilon
    print(f"laplace count: std {errors.std():.4f}, expected {expected:.4f}")
    assert errors.std() == pytest.approx(expected, rel=0.07)
    assert abs(errors.mean()) < 4 * expected / math.sqrt(RUNS)


def test_gaussian_count_noise_matches_reported_sigma(frame: pd.DataFrame) -> None:
    query = DpQuery("count", epsilon=0.5, delta=1e-5, mechanism="gaussian")
    budget = PrivacyBudget(epsilon=1.0, delta=1e-4)
    sigma = release(frame, [query], budget, seed=0)[0].noise_scale
    # Finding the analytic sigma takes ~1 ms, so the draws come 100 to a release, 40 seeds.
    errors = _errors(frame, query, len(frame), batch=100)
    classic = math.sqrt(2 * math.log(1.25 / 1e-5)) / 0.5
    print(f"gaussian count: std {errors.std():.4f}, sigma {sigma:.4f}, classic {classic:.4f}")

    assert sigma == pytest.approx(_analytic_sigma(0.5, 1e-5, 1.0), rel=1e-6)
    assert sigma < classic
    assert errors.std() == pytest.approx(sigma, rel=0.07)


def test_sum_clips_to_bounds_and_scales_noise() -> None:
    frame = pd.DataFrame({"x": [-100.0, 5.0, 1000.0, np.nan]})
    query = DpQuery("sum", column="x", bounds=(0, 10), epsilon=1e6)
    answer = release(frame, [query], PrivacyBudget(epsilon=1e6), seed=1)[0]
    assert answer.value == pytest.approx(0 + 5 + 10, abs=1e-3)
    assert answer.sensitivity == 10
    assert answer.noise_scale == pytest.approx(10 / 1e6)

    wide = DpQuery("sum", column="x", bounds=(-200, 50), epsilon=2.0)
    answer = release(frame, [wide], PrivacyBudget(epsilon=2.0), seed=1)[0]
    assert (answer.sensitivity, answer.noise_scale) == (200, 100)


def test_mean_splits_epsilon_and_stays_in_bounds(frame: pd.DataFrame) -> None:
    query = DpQuery("mean", column="wear", bounds=(0, 100), epsilon=1e5)
    answer = release(frame, [query], PrivacyBudget(epsilon=1e5), seed=2)[0]
    assert answer.value == pytest.approx(frame["wear"].clip(0, 100).mean(), abs=1e-2)
    assert answer.noise_scale == pytest.approx(100 / (1e5 / 2))  # the sum half's scale

    starved = DpQuery("mean", column="wear", bounds=(0, 100), epsilon=1e-4)
    values = [release(frame, [starved], PrivacyBudget(1.0), seed=s)[0].value for s in range(50)]
    assert all(0 <= v <= 100 for v in values)


def test_histograms_by_category_and_by_edges(frame: pd.DataFrame) -> None:
    budget = PrivacyBudget(epsilon=2e5)
    by_kind, by_wear = release(
        frame,
        [
            DpQuery("histogram", column="kind", bins=["L", "M", "H", "X"], epsilon=1e5),
            DpQuery("histogram", column="wear", bins=[0, 100, 250], epsilon=1e5),
        ],
        budget,
        seed=3,
    )
    counts = frame["kind"].value_counts()
    assert isinstance(by_kind.value, dict)
    assert by_kind.value == pytest.approx(
        {"L": counts["L"], "M": counts["M"], "H": counts["H"], "X": 0}, abs=1e-3
    )
    assert by_wear.value == pytest.approx(
        [(frame["wear"] < 100).sum(), (frame["wear"] >= 100).sum()], abs=1e-3
    )
    assert by_kind.sensitivity == 1
    assert budget.remaining()[0] == pytest.approx(0)  # each histogram cost ε once


def test_where_filters_rows(frame: pd.DataFrame) -> None:
    query = DpQuery("count", where={"kind": "H"}, epsilon=1e6)
    answer = release(frame, [query], PrivacyBudget(epsilon=1e6), seed=4)[0]
    assert answer.value == pytest.approx((frame["kind"] == "H").sum(), abs=1e-3)


def test_budget_is_all_or_nothing(frame: pd.DataFrame) -> None:
    budget = PrivacyBudget(epsilon=1.0)
    batch = [DpQuery("count", epsilon=0.4)] * 3
    with pytest.raises(BudgetExceeded, match="remaining epsilon=1") as caught:
        release(frame, batch, budget)
    assert isinstance(caught.value, Conflict)
    assert (budget.spent_epsilon, budget.spent_delta) == (0.0, 0.0)

    assert len(release(frame, [DpQuery("count", epsilon=0.1)] * 10, budget)) == 10
    assert budget.remaining()[0] == pytest.approx(0.0)
    with pytest.raises(BudgetExceeded):
        budget.spend(0.01)
    gaussian = DpQuery("count", epsilon=1e-9, delta=1e-6, mechanism="gaussian")
    with pytest.raises(BudgetExceeded):  # no δ in this budget
        release(frame, [gaussian], PrivacyBudget(epsilon=1.0))


def test_seed_makes_answers_reproducible(frame: pd.DataFrame) -> None:
    batch = [DpQuery("count"), DpQuery("sum", column="wear", bounds=(0, 250))]
    first = release(frame, batch, PrivacyBudget(1.0), seed=9)
    again = release(frame, batch, PrivacyBudget(1.0), seed=9)
    other = release(frame, batch, PrivacyBudget(1.0), seed=10)
    assert [a.value for a in first] == [a.value for a in again]
    assert [a.value for a in first] != [a.value for a in other]


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: DpQuery("median", column="wear"), "kind"),  # type: ignore[arg-type]
        (lambda: DpQuery("count", epsilon=0), "epsilon"),
        (lambda: DpQuery("count", delta=1.5), "delta"),
        (lambda: DpQuery("count", mechanism="gaussian"), "delta"),
        (lambda: DpQuery("count", mechanism="exponential"), "mechanism"),  # type: ignore[arg-type]
        (lambda: DpQuery("sum", column="wear"), "bounds"),
        (lambda: DpQuery("mean", column="wear", bounds=(5, 5)), "bounds"),
        (lambda: DpQuery("sum", bounds=(0, 1)), "column"),
        (lambda: DpQuery("histogram", column="kind"), "bins"),
        (lambda: DpQuery("count", bins=[1, 2]), "bins"),
    ],
)
def test_malformed_queries_name_the_field(build: Callable[[], DpQuery], field: str) -> None:
    with pytest.raises(ValueError, match=field) as caught:
        build()
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.issues[0].loc == field


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (DpQuery("sum", column="nope", bounds=(0, 1)), "queries[1].column"),
        (DpQuery("sum", column="kind", bounds=(0, 1)), "queries[1].column"),
        (DpQuery("count", where={"nope": 1}), "queries[1].where"),
        (DpQuery("histogram", column="wear", bins=[10, 5]), "queries[1].bins"),
    ],
)
def test_queries_that_do_not_fit_the_frame_spend_nothing(
    frame: pd.DataFrame, query: DpQuery, field: str
) -> None:
    budget = PrivacyBudget(epsilon=1.0)
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
        release(frame, [DpQuery("count"), query], budget)
    assert budget.spent_epsilon == 0.0

"""Selection strategies of active learning: formulas, k-center, mix, errors, and real data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from learnloop.core.fitting import LocalFitContext
from learnloop.families.tabular import TabularFamily, read_table
from learnloop.loop.active_learning import STRATEGIES, Selection, informativeness, select

AI4I = Path("/work/shared/datasets/predictive-maintenance/ai4i2020/ai4i2020.csv")
FAILURE = "Machine failure"
LEAKS = ["TWF", "HDF", "PWF", "OSF", "RNF"]

THREE_CLASS = np.array(
    [
        [1.0, 0.0, 0.0],
        [0.5, 0.3, 0.2],
        [1 / 3, 1 / 3, 1 / 3],
        [0.6, 0.4, 0.0],
    ]
)


def clusters(centres: np.ndarray, per_cluster: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Tight Gaussian blobs around ``centres``; returns the points and each one's cluster."""
    rng = np.random.default_rng(seed)
    owner = np.repeat(np.arange(len(centres)), per_cluster)
    return centres[owner] + rng.normal(0, 0.05, (len(owner), centres.shape[1])), owner


# -- informativeness ------------------------------------------------------------------------


def test_uncertainty_is_one_minus_the_top_probability() -> None:
    expected = [0.0, 0.5, 2 / 3, 0.4]
    np.testing.assert_allclose(informativeness(THREE_CLASS, "uncertainty"), expected)


def test_margin_is_one_minus_the_gap_between_the_top_two() -> None:
    expected = [0.0, 1 - 0.2, 1.0, 1 - 0.2]
    np.testing.assert_allclose(informativeness(THREE_CLASS, "margin"), expected)


def test_entropy_is_normalized_by_log_k_and_zero_terms_vanish() -> None:
    middle = -(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2)) / math.log(3)
    last = -(0.6 * math.log(0.6) + 0.4 * math.log(0.4)) / math.log(3)
    np.testing.assert_allclose(
        informativeness(THREE_CLASS, "entropy"), [0.0, middle, 1.0, last], atol=1e-12
    )


def test_a_1d_array_is_the_binary_probability_of_class_one() -> None:
    p = np.array([0.5, 0.9, 0.0, 0.25])
    np.testing.assert_allclose(informativeness(p, "uncertainty"), [0.5, 0.1, 0.0, 0.25])
    np.testing.assert_allclose(informativeness(p, "margin"), [1.0, 0.2, 0.0, 0.5])
    binary_entropy = -(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75))
    np.testing.assert_allclose(
        informativeness(p, "entropy"), [1.0, 0.4689956, 0.0, binary_entropy], atol=1e-6
    )


@pytest.mark.parametrize(
    ("probabilities", "message"),
    [
        (np.array([[0.5, 0.2]]), "sum to 1"),
        (np.array([[1.2, -0.2]]), r"\[0, 1\]"),
        (np.array([[np.nan, 1.0]]), "finite"),
        (np.ones((2, 1)), "k >= 2"),
        (np.ones((2, 2, 2)) / 2, "shape"),
    ],
)
def test_invalid_probabilities_are_refused(probabilities: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        informativeness(probabilities, "margin")


def test_stored_rounding_of_probabilities_is_tolerated() -> None:
    p = np.array([[0.3333, 0.3333, 0.3333]])
    assert informativeness(p, "entropy")[0] == pytest.approx(1.0)


# -- uncertainty-type selection -------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["uncertainty", "margin", "entropy"])
def test_the_most_uncertain_items_come_first(strategy: str) -> None:
    p = np.array([0.99, 0.5, 0.02, 0.6, 0.3, 0.95])
    chosen = select(strategy, 3, probabilities=p)  # type: ignore[arg-type]
    assert chosen.indices.tolist() == [1, 3, 4]
    assert chosen.strategy == strategy
    assert np.all(np.diff(chosen.scores) <= 0)
    np.testing.assert_allclose(chosen.scores, informativeness(p, strategy)[[1, 3, 4]])  # type: ignore[arg-type]


def test_ties_are_broken_by_the_seed_and_reproducibly() -> None:
    p = np.full(200, 0.5)
    first = select("margin", 10, probabilities=p, seed=1).indices
    assert first.tolist() == select("margin", 10, probabilities=p, seed=1).indices.tolist()
    assert first.tolist() != select("margin", 10, probabilities=p, seed=2).indices.tolist()


def test_a_budget_beyond_the_pool_takes_the_whole_pool() -> None:
    chosen = select("entropy", 50, probabilities=np.array([0.1, 0.4, 0.8]))
    assert sorted(chosen.indices.tolist()) == [0, 1, 2]
    assert len(chosen.scores) == 3


# -- diversity ------------------------------------------------------------------------------


def test_k_center_takes_one_point_per_cluster() -> None:
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10], [5, 5]], dtype=float)
    x, owner = clusters(centres, 40)
    chosen = select("diversity", 5, features=x, seed=3)
    assert sorted(owner[chosen.indices].tolist()) == [0, 1, 2, 3, 4]
    assert math.isinf(chosen.scores[0]) and np.all(np.isfinite(chosen.scores[1:]))
    assert np.all(np.diff(chosen.scores[1:]) <= 1e-12)  # k-center distances never grow


def test_k_center_avoids_clusters_that_are_already_labelled() -> None:
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)
    x, owner = clusters(centres, 30)
    labelled = centres[[0, 3]]
    chosen = select("diversity", 2, features=x, labelled_features=labelled)
    assert sorted(owner[chosen.indices].tolist()) == [1, 2]
    assert np.all(np.isfinite(chosen.scores)) and chosen.scores.min() > 0.5


def test_diversity_standardizes_the_features() -> None:
    # unscaled, (0, 5) is farther from the labelled rows than (1, 0); in z-scores the second
    # column's 1000-wide spread makes its 5 negligible, so (1, 0) is the far one
    x = np.array([[1.0, 0.0], [0.0, 5.0]])
    labelled = np.array([[0.0, 0.0], [0.0, 1000.0]])
    assert select("diversity", 1, features=x, labelled_features=labelled).indices.tolist() == [0]


def test_duplicate_points_are_never_chosen_twice() -> None:
    chosen = select("diversity", 5, features=np.zeros((5, 3)))
    assert sorted(chosen.indices.tolist()) == [0, 1, 2, 3, 4]


# -- mix ------------------------------------------------------------------------------------


def test_unweighted_mix_spreads_over_the_uncertain_candidates() -> None:
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)
    x, owner = clusters(centres, 50)
    # clusters 0 and 1 are uncertain; cluster 0 slightly more so
    p = np.where(owner == 0, 0.5, np.where(owner == 1, 0.45, 0.02))
    by_margin = select("margin", 4, probabilities=p)
    assert set(owner[by_margin.indices].tolist()) == {0}
    mixed = select("mix", 4, probabilities=p, features=x, candidate_factor=20)
    assert set(owner[mixed.indices].tolist()) == {0, 1}
    assert mixed.strategy == "mix" and len(set(mixed.indices.tolist())) == 4
    np.testing.assert_allclose(mixed.scores, informativeness(p, "margin")[mixed.indices])


def test_weighted_mix_splits_the_budget_without_duplicates() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(300)
    x = rng.normal(size=(300, 4))
    chosen = select(
        "mix", 10, probabilities=p, features=x, mix={"margin": 0.7, "random": 0.2, "diversity": 0.1}
    )
    assert len(chosen.indices) == 10 == len(set(chosen.indices.tolist()))
    assert len(chosen.scores) == 10
    top_margin = select("margin", 7, probabilities=p)
    assert chosen.indices[:7].tolist() == top_margin.indices.tolist()
    assert np.all(chosen.scores[7:9] == 0)  # the random part


def test_weighted_mix_rounds_to_the_budget_and_caps_at_the_pool() -> None:
    p = np.linspace(0.01, 0.99, 7)
    thirds = select("mix", 5, probabilities=p, mix={"margin": 1, "entropy": 1, "random": 1})
    assert len(thirds.indices) == 5 == len(set(thirds.indices.tolist()))
    whole = select("mix", 50, probabilities=p, mix={"uncertainty": 0.5, "random": 0.5})
    assert sorted(whole.indices.tolist()) == list(range(7))


# -- random, determinism, errors ------------------------------------------------------------


def test_random_is_uniform_without_replacement_and_seeded() -> None:
    x = np.zeros((1000, 2))
    a = select("random", 100, features=x, seed=5)
    assert len(set(a.indices.tolist())) == 100 and np.all(a.scores == 0)
    assert a.indices.tolist() == select("random", 100, features=x, seed=5).indices.tolist()
    assert a.indices.tolist() != select("random", 100, features=x, seed=6).indices.tolist()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_is_deterministic_for_a_seed(strategy: str) -> None:
    rng = np.random.default_rng(1)
    inputs = {"probabilities": rng.dirichlet([1, 1, 1], 500), "features": rng.normal(size=(500, 3))}
    runs = [select(strategy, 20, seed=9, **inputs) for _ in range(2)]  # type: ignore[arg-type]
    assert runs[0].indices.tolist() == runs[1].indices.tolist()
    np.testing.assert_array_equal(runs[0].scores, runs[1].scores)
    assert len(set(runs[0].indices.tolist())) == 20
    assert isinstance(runs[0], Selection) and runs[0].strategy == strategy


@pytest.mark.parametrize(
    ("strategy", "kwargs", "message"),
    [
        ("margin", {}, "needs class probabilities"),
        ("diversity", {"probabilities": np.full(3, 0.5)}, "needs the pool's features"),
        ("mix", {"probabilities": np.full(3, 0.5)}, "needs the pool's features"),
        ("random", {}, "to size the pool"),
        ("nearest", {"probabilities": np.full(3, 0.5)}, "unknown strategy"),
        (
            "margin",
            {"probabilities": np.full(3, 0.5), "features": np.zeros((4, 2))},
            "3 rows but features have 4",
        ),
        (
            "diversity",
            {"features": np.zeros((4, 2)), "labelled_features": np.zeros((2, 3))},
            "3 columns but features have 2",
        ),
        ("diversity", {"features": np.array([[0.0, np.nan]])}, "NaN"),
        ("mix", {"probabilities": np.full(3, 0.5), "mix": {"margin": -1}}, ">= 0"),
        ("mix", {"probabilities": np.full(3, 0.5), "mix": {"mix": 1}}, "unknown mix component"),
        ("mix", {"probabilities": np.full(3, 0.5), "mix": {"random": 0}}, "sum to 0"),
        ("mix", {"probabilities": np.full(3, 0.5), "mix": {"diversity": 1}}, "features"),
        ("margin", {"probabilities": np.full(3, 0.5), "mix": {"random": 1}}, "only used by"),
    ],
)
def test_missing_or_mismatched_inputs_raise(strategy: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        select(strategy, 2, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("budget", [0, -3])
def test_a_budget_below_one_is_refused(budget: int) -> None:
    with pytest.raises(ValueError, match="budget"):
        select("random", budget, probabilities=np.full(3, 0.5))


# -- real data ------------------------------------------------------------------------------


def test_on_ai4i_uncertainty_picks_rows_nearer_the_decision_than_random() -> None:
    frame = read_table(AI4I)
    sample, _ = train_test_split(frame, train_size=2000, stratify=frame[FAILURE], random_state=0)
    labelled, pool = train_test_split(
        sample, train_size=400, stratify=sample[FAILURE], random_state=0
    )
    family = TabularFamily(
        {"target": FAILURE, "drop_columns": LEAKS, "n_estimators": 50, "checkpoint_every": 50}
    )
    family.fit(labelled, LocalFitContext())
    outputs = family.predict_frame(pool)
    p = np.array([o.probabilities["1"] for o in outputs])  # type: ignore[index]
    uncertain = select("uncertainty", 40, probabilities=p)
    randomly = select("random", 40, probabilities=p, seed=0)
    distance_uncertain = np.abs(p[uncertain.indices] - 0.5).mean()
    distance_random = np.abs(p[randomly.indices] - 0.5).mean()
    assert distance_uncertain < distance_random - 0.1
    assert np.abs(p[uncertain.indices] - 0.5).max() == pytest.approx(np.sort(np.abs(p - 0.5))[39])

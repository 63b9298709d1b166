"""Simulated learners with known ground truth, and the oracle that knows how they were made.

The simulation follows the DKT paper's "Synthetic-5" recipe: ``num_skills`` concepts, items
each with one concept and a difficulty ``β``, learners with an ability ``θ_k`` per concept drawn
from ``N(0, ability_sd²)``, answers from a 3-parameter-logistic IRT curve with guessing ``c``:

    P(correct) = c + (1 − c) · σ(θ_k + η · n_k − β)

where ``n_k`` is how many items of concept ``k`` the learner has attempted before — learning
raises the ability by ``η`` per attempt.

Two reference predictors come with the data:

* the **omniscient** probability (``p_true``): the curve above with the learner's true ability —
  no model that sees only answers can match it;
* the **oracle** (:func:`oracle_probabilities`): the Bayes-optimal prediction from the learner's
  earlier answers, knowing the generating model (``β``, ``c``, ``η``, the ability prior) but not
  the learner's ability, which it infers on a grid. This is the ceiling a knowledge-tracing model
  can reach on this data, and the AUC a model is measured against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

GRID = np.linspace(-6.0, 6.0, 241)


@dataclass(frozen=True)
class SyntheticTruth:
    difficulty: np.ndarray  # [items]
    item_skill: np.ndarray  # [items]
    ability: np.ndarray  # [learners, skills]
    guess: float
    learning_rate: float
    ability_sd: float


@dataclass(frozen=True)
class SyntheticData:
    interactions: pd.DataFrame  # learner_id, item_id, skill_ids, correct, order, timestamp, p_true
    truth: SyntheticTruth


def generate_synthetic_data(
    num_learners: int = 2000,
    *,
    num_items: int = 50,
    num_skills: int = 5,
    attempts: int = 50,
    guess: float = 0.25,
    learning_rate: float = 0.1,
    ability_sd: float = 1.0,
    order: str = "random",
    seed: int = 0,
) -> SyntheticData:
    """Simulate ``num_learners`` learners answering ``attempts`` items each.

    ``order="fixed"`` gives every learner the same item order (as in the DKT paper); "random"
    shuffles per learner. Items are drawn without replacement while ``attempts ≤ num_items``.
    """
    if order not in ("fixed", "random"):
        raise ValueError("order must be 'fixed' or 'random'")
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0.0, 1.0, num_items)
    item_skill = rng.integers(0, num_skills, num_items)
    ability = rng.normal(0.0, ability_sd, (num_learners, num_skills))
    fixed = rng.permutation(num_items)
    learners, items, correct, p_true = [], [], [], []
    practice = np.zeros((num_learners, num_skills))
    for u in range(num_learners):
        seq = fixed if order == "fixed" else rng.permutation(num_items)
        if attempts > num_items:
            seq = np.concatenate([seq, rng.integers(0, num_items, attempts - num_items)])
        for q in seq[:attempts]:
            k = item_skill[q]
            p = guess + (1 - guess) * expit(
                ability[u, k] + learning_rate * practice[u, k] - difficulty[q]
            )
            practice[u, k] += 1
            learners.append(u)
            items.append(q)
            p_true.append(p)
            correct.append(int(rng.random() < p))
    n = len(learners)
    frame = pd.DataFrame(
        {
            "learner_id": [f"s{u}" for u in learners],
            "item_id": [f"q{q}" for q in items],
            "skill_ids": [f"c{item_skill[q]}" for q in items],
            "correct": np.asarray(correct, dtype=np.int8),
            "order": np.tile(np.arange(attempts), num_learners)[:n].astype(np.int64),
            "p_true": np.asarray(p_true),
        }
    )
    frame["timestamp"] = frame["order"]
    truth = SyntheticTruth(difficulty, item_skill, ability, guess, learning_rate, ability_sd)
    return SyntheticData(frame, truth)


def oracle_probabilities(frame: pd.DataFrame, truth: SyntheticTruth) -> np.ndarray:
    """Bayes-optimal P(correct) of each row given the learner's earlier rows (see module doc)."""
    frame = frame.reset_index(drop=True)
    learner = pd.factorize(frame["learner_id"])[0]
    item = frame["item_id"].str.slice(1).astype(int).to_numpy()
    skill = truth.item_skill[item]
    correct = frame["correct"].to_numpy()
    order = np.lexsort((frame["order"].to_numpy(), learner))
    n_learners, n_skills = learner.max() + 1, int(truth.item_skill.max()) + 1
    prior = np.exp(-0.5 * (GRID / truth.ability_sd) ** 2)
    weights = np.tile(prior / prior.sum(), (n_learners, n_skills, 1))
    practice = np.zeros((n_learners, n_skills))
    out = np.zeros(len(frame))
    c = truth.guess
    # one pass in time order; rows of different learners are independent
    for r in order:
        u, k, q = learner[r], skill[r], item[r]
        curve = c + (1 - c) * expit(
            GRID + truth.learning_rate * practice[u, k] - truth.difficulty[q]
        )
        w = weights[u, k]
        out[r] = float(w @ curve)
        w = w * (curve if correct[r] else 1 - curve)
        weights[u, k] = w / w.sum()
        practice[u, k] += 1
    return out

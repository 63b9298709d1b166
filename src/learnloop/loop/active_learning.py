"""Active-learning selection: which unlabelled items of a pool are most worth labelling.

Pure functions over arrays (no storage, no HTTP): :func:`select` returns a :class:`Selection`
of positions into the pool, in the order they were chosen, with one score per chosen item
(higher = more informative).

Informativeness of class probabilities ``p`` (one row per item, ``k`` classes; a 1-D array is
the binary ``P(class 1)``), see :func:`informativeness`:

* ``uncertainty`` — least confidence, ``1 - max_c p_c``, in ``[0, 1 - 1/k]``;
* ``margin`` — ``1 - (p_(1) - p_(2))`` with ``p_(1) >= p_(2)`` the two largest, in ``[0, 1]``;
* ``entropy`` — ``-sum_c p_c log p_c / log k`` (``0 log 0 = 0``), in ``[0, 1]``.

For two classes all three are monotone in ``|p - 0.5|``, so they rank a pool identically.

Strategies of :func:`select`:

* ``uncertainty`` / ``margin`` / ``entropy`` — the ``budget`` items of highest informativeness;
  ties are broken in a random order drawn from ``seed``.
* ``diversity`` — greedy k-center on standardized ``features`` (z-scores over pool and labelled
  rows together; constant columns are left unscaled): each step takes the item farthest
  (Euclidean) from everything labelled or chosen so far. Without ``labelled_features`` the first
  item is drawn at random and scores ``inf``; every other score is its distance to the nearest
  labelled or already-chosen item at the moment it was chosen. Pools larger than
  :data:`KCENTER_MAX_CANDIDATES` are first subsampled uniformly (seeded) to that many
  candidates (or ``2 * budget``, whichever is larger), which bounds the cost at
  ``O(candidates * (budget + labelled) * dims)``.
* ``mix`` without weights — *ranked candidates, then diversity* (as in cluster-margin and
  ranked batch-mode sampling): the ``candidate_factor * budget`` items of highest ``margin``
  informativeness are the candidates, and greedy k-center (standardized over the whole pool and
  the labelled rows, started from ``labelled_features``) picks ``budget`` of them, so a batch
  does not spend its labels on near-duplicates of one uncertain region. The scores are the
  margin informativeness of the chosen items; the order is the k-center order.
* ``mix`` with weights, e.g. ``{"margin": 0.7, "random": 0.3}`` — the budget is split across
  the named strategies in proportion to the weights (largest-remainder rounding, so the parts
  sum to the budget); each strategy picks its part, in the mapping's order, from the items not
  yet chosen, and a ``diversity`` part also keeps away from the items chosen before it. Scores
  are each part's own scores.
* ``random`` — uniform without replacement; scores are all ``0``. It needs ``probabilities``
  or ``features`` only to know the pool size.

Every strategy returns ``min(budget, pool size)`` distinct items and is deterministic for a
given ``seed``. Missing inputs, mismatched shapes, invalid probabilities, ``budget < 1`` and
unknown strategies raise ``ValueError`` with a message naming the problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

Strategy = Literal["uncertainty", "margin", "entropy", "diversity", "mix", "random"]
Informativeness = Literal["uncertainty", "margin", "entropy"]

STRATEGIES: tuple[str, ...] = get_args(Strategy)
INFORMATIVENESS: tuple[str, ...] = get_args(Informativeness)
MIX_SCORE: Informativeness = "margin"
"""The informativeness that ranks the candidates of the unweighted ``mix``."""
KCENTER_MAX_CANDIDATES = 20_000
"""Larger pools are subsampled to this many k-center candidates (see the module docstring)."""
PROBABILITY_SUM_TOLERANCE = 1e-2
"""Rows may sum to 1 within this (rounded stored outputs); they are renormalized."""
_DISTANCE_BLOCK = 4_000_000  # distance-matrix entries computed at once against labelled rows


@dataclass(frozen=True)
class Selection:
    """Items chosen from a pool, in selection order.

    ``indices`` are distinct positions into the pool; ``scores[i]`` is the strategy's score of
    ``indices[i]`` (see the module docstring for what each strategy reports).
    """

    indices: np.ndarray
    scores: np.ndarray
    strategy: str


def informativeness(probabilities: np.ndarray, strategy: Informativeness) -> np.ndarray:
    """The informativeness of each row of class probabilities (higher = more informative).

    ``probabilities`` is ``(n, k)`` with rows summing to 1, or a 1-D array of binary
    ``P(class 1)``. ``uncertainty = 1 - max p``; ``margin = 1 - (p1 - p2)`` of the two largest;
    ``entropy = -sum p log p / log k``. Raises ``ValueError`` on an unknown ``strategy`` or
    probabilities that are not probabilities.
    """
    if strategy not in INFORMATIVENESS:
        raise ValueError(
            f"unknown informativeness {strategy!r}; expected one of {', '.join(INFORMATIVENESS)}"
        )
    p = _probability_matrix(probabilities)
    if len(p) == 0:
        return np.zeros(0)
    if strategy == "uncertainty":
        return np.asarray(1.0 - p.max(axis=1))
    if strategy == "margin":
        top_two = -np.partition(-p, 1, axis=1)[:, :2]
        return np.asarray(1.0 - (top_two[:, 0] - top_two[:, 1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return np.asarray(np.clip(-terms.sum(axis=1) / np.log(p.shape[1]), 0.0, 1.0))


def select(
    strategy: Strategy,
    budget: int,
    *,
    probabilities: np.ndarray | None = None,
    features: np.ndarray | None = None,
    labelled_features: np.ndarray | None = None,
    seed: int = 0,
    mix: Mapping[str, float] | None = None,
    candidate_factor: int = 10,
) -> Selection:
    """Choose ``min(budget, pool size)`` items of the pool with ``strategy``.

    ``probabilities`` (``(n, k)`` or binary 1-D) are needed by ``uncertainty``, ``margin``,
    ``entropy`` and ``mix``; ``features`` (``(n, d)`` numbers) by ``diversity`` and ``mix``;
    ``labelled_features`` (``(m, d)``, optional) are the already-labelled rows that k-center
    starts from. ``mix`` holds strategy weights for the weighted mix; ``candidate_factor`` sets
    the candidate pool of the unweighted mix. See the module docstring for each strategy.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    if isinstance(budget, bool) or not isinstance(budget, int | np.integer) or budget < 1:
        raise ValueError(f"budget must be a positive integer, got {budget!r}")
    if isinstance(candidate_factor, bool) or candidate_factor < 1:
        raise ValueError(f"candidate_factor must be at least 1, got {candidate_factor!r}")
    if mix is not None and strategy != "mix":
        raise ValueError(f"mix weights are only used by the 'mix' strategy, not {strategy!r}")
    p = None if probabilities is None else _probability_matrix(probabilities)
    x = None if features is None else _feature_matrix(features, "features")
    labelled = None
    if labelled_features is not None:
        labelled = _feature_matrix(labelled_features, "labelled_features")
        if x is not None and labelled.shape[1] != x.shape[1]:
            raise ValueError(
                f"labelled_features have {labelled.shape[1]} columns but features have {x.shape[1]}"
            )
    if p is not None and x is not None and len(p) != len(x):
        raise ValueError(f"probabilities have {len(p)} rows but features have {len(x)}")
    pool = _Pool(p, x, labelled)
    rng = np.random.default_rng(seed)
    if strategy == "mix" and mix is not None:
        return _weighted_mix(pool, int(budget), mix, seed, candidate_factor)
    indices, scores = _select(pool, strategy, int(budget), rng, candidate_factor)
    return Selection(indices, scores, strategy)


# -- strategies -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pool:
    probabilities: np.ndarray | None
    features: np.ndarray | None
    labelled: np.ndarray | None

    def size(self, strategy: str) -> int:
        if self.probabilities is not None:
            return len(self.probabilities)
        if self.features is not None:
            return len(self.features)
        raise ValueError(f"strategy {strategy!r} needs probabilities or features to size the pool")

    def need_probabilities(self, strategy: str) -> np.ndarray:
        if self.probabilities is None:
            raise ValueError(f"strategy {strategy!r} needs class probabilities of the pool")
        return self.probabilities

    def need_features(self, strategy: str) -> np.ndarray:
        if self.features is None:
            raise ValueError(f"strategy {strategy!r} needs the pool's features")
        return self.features

    def subset(self, rows: np.ndarray, extra_labelled: np.ndarray | None) -> _Pool:
        labelled = self.labelled
        if extra_labelled is not None and len(extra_labelled):
            parts = [extra_labelled] if labelled is None else [labelled, extra_labelled]
            labelled = np.vstack(parts)
        return _Pool(
            None if self.probabilities is None else self.probabilities[rows],
            None if self.features is None else self.features[rows],
            labelled,
        )


def _select(
    pool: _Pool, strategy: str, budget: int, rng: np.random.Generator, candidate_factor: int
) -> tuple[np.ndarray, np.ndarray]:
    if strategy in INFORMATIVENESS:
        scores = informativeness(pool.need_probabilities(strategy), strategy)  # type: ignore[arg-type]
        chosen = _top(scores, budget, rng)
        return chosen, scores[chosen]
    if strategy == "diversity":
        features = pool.need_features(strategy)
        scaled, labelled = _standardize(features, pool.labelled)
        return _k_center(scaled, labelled, budget, rng)
    if strategy == "mix":
        scores = informativeness(pool.need_probabilities(strategy), MIX_SCORE)
        features = pool.need_features(strategy)
        scaled, labelled = _standardize(features, pool.labelled)
        candidates = _top(scores, candidate_factor * budget, rng)
        picked, _ = _k_center(scaled[candidates], labelled, budget, rng, subsample=False)
        chosen = candidates[picked]
        return chosen, scores[chosen]
    n = pool.size(strategy)
    chosen = rng.choice(n, size=min(budget, n), replace=False).astype(np.int64)
    return chosen, np.zeros(len(chosen))


def _weighted_mix(
    pool: _Pool, budget: int, weights: Mapping[str, float], seed: int, candidate_factor: int
) -> Selection:
    parts = _split_budget(weights, budget, pool)
    n = pool.size("mix")
    free = np.ones(n, dtype=bool)
    indices: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for offset, (name, part) in enumerate(parts.items()):
        if part == 0:
            continue
        rows = np.flatnonzero(free)
        taken = np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64)
        chosen_features = (
            pool.features[taken] if pool.features is not None and name == "diversity" else None
        )
        sub = pool.subset(rows, chosen_features)
        rng = np.random.default_rng([seed, offset])
        picked, picked_scores = _select(sub, name, part, rng, candidate_factor)
        indices.append(rows[picked])
        scores.append(picked_scores)
        free[rows[picked]] = False
    return Selection(
        np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64),
        np.concatenate(scores) if scores else np.zeros(0),
        "mix",
    )


def _split_budget(weights: Mapping[str, float], budget: int, pool: _Pool) -> dict[str, int]:
    """Largest-remainder split of ``min(budget, pool size)`` in proportion to ``weights``."""
    if not weights:
        raise ValueError("mix weights are empty; give at least one strategy with a weight > 0")
    for name, weight in weights.items():
        if name not in STRATEGIES or name == "mix":
            allowed = ", ".join(s for s in STRATEGIES if s != "mix")
            raise ValueError(f"unknown mix component {name!r}; expected some of {allowed}")
        if not np.isfinite(weight) or weight < 0:
            raise ValueError(f"mix weight of {name!r} must be a finite number >= 0, got {weight}")
    names = list(weights)
    w = np.array([float(weights[name]) for name in names])
    if w.sum() <= 0:
        raise ValueError("mix weights sum to 0; give at least one strategy a positive weight")
    for name, weight in zip(names, w, strict=True):  # fail early on missing inputs
        if weight > 0 and name in INFORMATIVENESS:
            pool.need_probabilities(name)
        if weight > 0 and name == "diversity":
            pool.need_features(name)
    total = min(budget, pool.size("mix"))
    exact = w / w.sum() * total
    parts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - parts), kind="stable")
    parts[order[: total - parts.sum()]] += 1
    return dict(zip(names, parts.tolist(), strict=True))


# -- building blocks ------------------------------------------------------------------------


def _top(scores: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of the ``count`` highest scores, best first, ties in a seeded random order."""
    tie_break = rng.random(len(scores))
    order = np.lexsort((tie_break, -scores))
    return np.asarray(order[: min(count, len(scores))], dtype=np.int64)


def _standardize(
    features: np.ndarray, labelled: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Z-scores with the mean and spread of pool and labelled rows together."""
    both = features if labelled is None else np.vstack([features, labelled])
    if len(both) == 0:
        return features, labelled
    mean = both.mean(axis=0)
    spread = both.std(axis=0)
    spread[spread == 0] = 1.0
    scaled_labelled = None if labelled is None else (labelled - mean) / spread
    return (features - mean) / spread, scaled_labelled


def _k_center(
    x: np.ndarray,
    labelled: np.ndarray | None,
    budget: int,
    rng: np.random.Generator,
    *,
    subsample: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy k-center: positions into ``x`` in selection order and their distances (see the
    module docstring)."""
    n = len(x)
    count = min(budget, n)
    if count == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    candidates = np.arange(n)
    limit = max(KCENTER_MAX_CANDIDATES, 2 * count)
    if subsample and n > limit:
        candidates = np.sort(rng.choice(n, size=limit, replace=False))
        x = x[candidates]
    nearest = _min_squared_distances(x, labelled)  # +inf when nothing is labelled
    chosen = np.empty(count, dtype=np.int64)
    scores = np.empty(count)
    for step in range(count):
        if step == 0 and np.isinf(nearest).all():
            best = int(rng.integers(len(x)))
        else:
            best = int(np.argmax(nearest))
        chosen[step] = best
        scores[step] = np.sqrt(nearest[best]) if np.isfinite(nearest[best]) else np.inf
        difference = x - x[best]
        np.minimum(nearest, np.einsum("ij,ij->i", difference, difference), out=nearest)
        nearest[best] = -1.0  # stays below every distance: never chosen again
    return candidates[chosen], np.maximum(scores, 0.0)


def _min_squared_distances(x: np.ndarray, centres: np.ndarray | None) -> np.ndarray:
    """Squared Euclidean distance of each row of ``x`` to its nearest centre (inf: none)."""
    nearest = np.full(len(x), np.inf)
    if centres is None or len(centres) == 0:
        return nearest
    # |x - c|² = |x|² + min over c of (|c|² - 2 x·c): the row term is added once at the end
    block = max(1, _DISTANCE_BLOCK // max(len(x), 1))
    for start in range(0, len(centres), block):
        c = centres[start : start + block]
        partial = x @ (-2.0 * c.T)
        partial += np.einsum("ij,ij->i", c, c)[None, :]
        np.minimum(nearest, partial.min(axis=1), out=nearest)
    nearest += np.einsum("ij,ij->i", x, x)
    return np.maximum(nearest, 0.0)


def _probability_matrix(probabilities: np.ndarray) -> np.ndarray:
    p = np.asarray(probabilities, dtype="float64")
    if p.ndim == 1:
        p = np.column_stack([1.0 - p, p])
    if p.ndim != 2 or (len(p) and p.shape[1] < 2):
        raise ValueError(
            f"probabilities must be (n, k) with k >= 2 classes or 1-D binary, got shape {p.shape}"
        )
    if len(p) == 0:
        return p
    if not np.isfinite(p).all() or p.min() < -1e-9 or p.max() > 1 + 1e-9:
        raise ValueError("probabilities must be finite numbers in [0, 1]")
    sums = p.sum(axis=1)
    off = np.abs(sums - 1.0) > PROBABILITY_SUM_TOLERANCE
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise ValueError(f"probability rows must sum to 1; row {row} sums to {sums[row]:.4g}")
    return np.asarray(np.clip(p, 0.0, 1.0) / sums[:, None])


def _feature_matrix(features: np.ndarray, name: str) -> np.ndarray:
    try:
        x = np.asarray(features, dtype="float64")
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be numeric: {e}") from e
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (rows, dims) array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} hold NaN or infinite values; impute them first")
    return x

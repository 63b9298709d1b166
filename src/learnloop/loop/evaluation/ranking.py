"""Ranking metrics over queries: nDCG@k, recall@k and mean reciprocal rank.

A query is one list of candidates; ``relevance[q][i]`` is the graded relevance (≥ 0) of
candidate ``i`` of query ``q`` and ``scores[q][i]`` the model's score for it (higher = ranked
earlier). Lists may differ in length between queries.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from learnloop.core.errors import InvalidInput, Issue


def ranking_metrics(
    relevance: Sequence[Sequence[float]], scores: Sequence[Sequence[float]], *, k: int = 10
) -> dict[str, float]:
    """Mean ``ndcg@k``, ``recall@k`` and ``mrr`` over the queries with a relevant candidate.

    * ``ndcg@k`` — ``DCG@k / IDCG@k`` with linear gains and discount ``1 / log2(rank + 1)``;
      candidates with tied scores share the average discount of the ranks they occupy, exactly
      like ``sklearn.metrics.ndcg_score``;
    * ``recall@k`` — relevant (relevance > 0) candidates in the top ``k`` / all relevant ones;
    * ``mrr`` — mean of ``1 / rank`` of the first relevant candidate.

    recall@k and MRR break score ties by list order. Queries without any relevant candidate are
    skipped, as every metric is undefined (0 / 0) for them; note that sklearn's ``ndcg_score``
    counts such queries as 0 instead. Raises :class:`InvalidInput` on mismatched shapes,
    negative or non-finite values, ``k < 1`` or when no query has a relevant candidate.
    """
    if k < 1:
        raise InvalidInput("cannot score", [Issue("k", "must be at least 1")])
    if len(relevance) != len(scores):
        raise InvalidInput(
            "cannot score",
            [Issue("scores", f"{len(scores)} queries, relevance has {len(relevance)}")],
        )
    ndcg: list[float] = []
    recall: list[float] = []
    reciprocal_ranks: list[float] = []
    for q, (query_relevance, query_scores) in enumerate(zip(relevance, scores, strict=True)):
        rel, score = _query(q, query_relevance, query_scores)
        if not (rel > 0).any():
            continue
        ndcg.append(_tie_averaged_dcg(rel, score, k) / _ideal_dcg(rel, k))
        hits = rel[np.argsort(-score, kind="stable")] > 0
        recall.append(float(hits[:k].sum() / hits.sum()))
        reciprocal_ranks.append(1.0 / (int(np.argmax(hits)) + 1))
    if not ndcg:
        raise InvalidInput("cannot score", [Issue("relevance", "no query has a relevant item")])
    return {
        f"ndcg@{k}": float(np.mean(ndcg)),
        f"recall@{k}": float(np.mean(recall)),
        "mrr": float(np.mean(reciprocal_ranks)),
    }


def _query(q: int, relevance: Sequence[float], scores: Sequence[float]) -> tuple[np.ndarray, ...]:
    rel = np.asarray(relevance, dtype=np.float64)
    score = np.asarray(scores, dtype=np.float64)
    if rel.ndim != 1 or rel.shape != score.shape:
        raise InvalidInput(
            "cannot score", [Issue(f"scores[{q}]", f"shape {score.shape}, expected {rel.shape}")]
        )
    if not (np.isfinite(rel).all() and np.isfinite(score).all()) or (rel < 0).any():
        raise InvalidInput(
            "cannot score", [Issue(f"relevance[{q}]", "values must be finite, relevance ≥ 0")]
        )
    return rel, score


def _discounts(n: int, k: int) -> np.ndarray:
    discount = 1.0 / np.log2(np.arange(n) + 2.0)
    discount[k:] = 0.0
    return discount


def _ideal_dcg(relevance: np.ndarray, k: int) -> float:
    return float(np.sort(relevance)[::-1] @ _discounts(len(relevance), k))


def _tie_averaged_dcg(relevance: np.ndarray, scores: np.ndarray, k: int) -> float:
    """DCG@k where each group of tied scores gets its mean relevance on every rank it spans."""
    _, group, counts = np.unique(-scores, return_inverse=True, return_counts=True)
    mean_gain = np.bincount(group, weights=relevance) / counts
    cumulative = np.cumsum(_discounts(len(relevance), k))
    group_discount = np.diff(np.r_[0.0, cumulative[np.cumsum(counts) - 1]])
    return float(mean_gain @ group_discount)

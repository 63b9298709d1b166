"""Prediction quality from the loop: confidence over time, and recurring error patterns.

Confidence tracking
    Each served prediction's confidence (top-class probability, or an explicit
    ``confidence``/``score`` field) is bucketed by time. The reference is the first
    ``reference_buckets`` buckets of the window; every later bucket gets the population
    stability index (PSI, 10 quantile bins of the reference) and the latest bucket a two-sample
    Kolmogorov–Smirnov test against the reference. PSI above ``psi_alert`` (0.2 by default, the
    usual "significant shift" mark) with at least ``min_count`` predictions raises an alert.

Error patterns
    The examples with feedback are split into errors (wrong label, thumbs down, rating ≤ 2) and
    the rest. A shallow decision tree (depth 3) on the inputs separates them; every leaf with at
    least ``min_support`` errors and an error rate at least 1.25× the base rate is a pattern,
    reported as a readable rule with counts, rate, lift and example prediction ids, most errors
    first. Free-text inputs are clustered instead (TF-IDF vectors, k-means) and each cluster of
    errors is reported with its top terms. The most frequent (predicted → label) confusions are
    listed as well.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from learnloop.core.labels import LabelledExample, confidence_of
from learnloop.core.ledger import PredictionRecord
from learnloop.loop.drift import sample_psi


def confidence_report(
    records: Sequence[PredictionRecord],
    *,
    bucket_s: int = 3600,
    reference_buckets: int = 1,
    psi_alert: float = 0.2,
    min_count: int = 30,
) -> dict[str, Any]:
    from scipy import stats

    points = [(r.created_at, c) for r in records if (c := confidence_of(r.output)) is not None]
    if not points:
        return {"predictions": 0, "buckets": [], "alert": False, "reason": "no confidences"}
    points.sort(key=lambda p: p[0])
    by_bucket: dict[int, list[float]] = {}
    for at, c in points:
        by_bucket.setdefault(int(at.timestamp()) // bucket_s * bucket_s, []).append(c)
    keys = sorted(by_bucket)
    ref_keys = keys[:reference_buckets]
    reference = np.array([c for k in ref_keys for c in by_bucket[k]])
    buckets = []
    for k in keys:
        values = np.array(by_bucket[k])
        hist = np.histogram(np.clip(values, 0, 1), bins=10, range=(0, 1))[0]
        entry: dict[str, Any] = {
            "start": datetime.fromtimestamp(k, UTC).isoformat(),
            "count": len(values),
            "mean": round(float(values.mean()), 6),
            "p10": round(float(np.quantile(values, 0.1)), 6),
            "p50": round(float(np.quantile(values, 0.5)), 6),
            "p90": round(float(np.quantile(values, 0.9)), 6),
            "histogram": hist.tolist(),
            "reference": k in ref_keys,
        }
        if k not in ref_keys:
            entry["psi"] = round(sample_psi(reference, values), 6)
        buckets.append(entry)
    latest = buckets[-1]
    report: dict[str, Any] = {
        "predictions": len(points),
        "bucket_s": bucket_s,
        "reference_buckets": len(ref_keys),
        "buckets": buckets,
        "alert": False,
        "psi_alert": psi_alert,
    }
    if len(keys) > len(ref_keys):
        current = np.array(by_bucket[keys[-1]])
        ks = stats.ks_2samp(reference, current)
        report["latest"] = {
            "start": latest["start"],
            "psi": latest["psi"],
            "ks_statistic": round(float(ks.statistic), 6),
            "ks_p_value": float(ks.pvalue),
            "mean_shift": round(float(current.mean() - reference.mean()), 6),
        }
        report["alert"] = bool(
            latest["psi"] > psi_alert and len(current) >= min_count and len(reference) >= min_count
        )
    else:
        report["reason"] = "one bucket only: nothing to compare yet"
    return report


def _rule_text(tree: Any, names: Sequence[str], leaf: int) -> list[str]:
    """The path to ``leaf`` as conditions; numeric bounds merged to the tightest."""
    t = tree.tree_
    parent: dict[int, tuple[int, bool]] = {}
    for node in range(t.node_count):
        if t.children_left[node] != -1:
            parent[int(t.children_left[node])] = (node, True)
            parent[int(t.children_right[node])] = (node, False)
    upper: dict[str, float] = {}
    lower: dict[str, float] = {}
    equal: dict[str, str] = {}
    unequal: set[str] = set()
    node = leaf
    while node in parent:
        up, left = parent[node]
        name, threshold = names[t.feature[up]], float(t.threshold[up])
        if "=" in name:  # a one-hot column "col=value", split at 0.5
            col, value = name.split("=", 1)
            if left:
                unequal.add(f"{col} != {value!r}")
            else:
                equal[col] = value
        elif left:
            upper[name] = min(upper.get(name, threshold), threshold)
        else:
            lower[name] = max(lower.get(name, threshold), threshold)
        node = up
    out = [f"{c} == {v!r}" for c, v in equal.items()]
    out += [u for u in unequal if u.split(" != ")[0] not in equal]
    out += [f"{c} > {round(v, 4)}" for c, v in lower.items()]
    out += [f"{c} <= {round(v, 4)}" for c, v in upper.items()]
    return sorted(out)


def _feature_frame(examples: Sequence[LabelledExample]) -> tuple[pd.DataFrame, list[str]]:
    frame = pd.DataFrame([dict(e.prediction.inputs or {}) for e in examples])
    text_cols: list[str] = []
    parts = []
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            parts.append(s.astype(float).rename(str(col)))
        else:
            text = s.astype(str)
            if text.str.len().mean() > 30:
                text_cols.append(str(col))
            elif s.nunique() <= 30:
                dummies = pd.get_dummies(text, prefix=str(col), prefix_sep="=").astype(float)
                parts.append(dummies)
    x = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=frame.index)
    return x.fillna(x.median()).fillna(0.0), text_cols


def error_patterns(
    examples: Sequence[LabelledExample],
    *,
    top: int = 5,
    min_support: int = 5,
    max_depth: int = 3,
    max_examples: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    from sklearn.tree import DecisionTreeClassifier

    errors = [e for e in examples if e.negative]
    confusions = Counter(
        (str(e.predicted), str(e.label)) for e in errors if e.label_source is not None
    )
    report: dict[str, Any] = {
        "examples": len(examples),
        "errors": len(errors),
        "error_rate": round(len(errors) / len(examples), 6) if examples else None,
        "patterns": [],
        "text_clusters": [],
        "confusions": [
            {"predicted": p, "label": lab, "count": n}
            for (p, lab), n in confusions.most_common(top)
        ],
    }
    if len(errors) < min_support or len(errors) == len(examples):
        report["reason"] = (
            "too few errors to find patterns"
            if len(errors) < min_support
            else "every example is an error: no contrast"
        )
        return report
    x, text_cols = _feature_frame(examples)
    y = np.array([e.negative for e in examples], dtype=int)
    base = y.mean()
    if x.shape[1]:
        tree = DecisionTreeClassifier(
            max_depth=max_depth, min_samples_leaf=min_support, random_state=seed
        ).fit(x.to_numpy(), y)
        leaves = tree.apply(x.to_numpy())
        patterns = []
        for leaf in np.unique(leaves):
            members = np.flatnonzero(leaves == leaf)
            n_err = int(y[members].sum())
            rate = n_err / len(members)
            if n_err < min_support or rate < 1.25 * base:
                continue
            wrong = [examples[i] for i in members if y[i]]
            patterns.append(
                {
                    "rule": " and ".join(_rule_text(tree, list(x.columns), int(leaf))) or "(all)",
                    "errors": n_err,
                    "count": len(members),
                    "error_rate": round(rate, 6),
                    "lift": round(rate / base, 4),
                    "examples": [
                        {
                            "prediction_id": e.prediction.id,
                            "predicted": e.predicted,
                            "label": e.label,
                            "inputs": dict(e.prediction.inputs or {}),
                        }
                        for e in wrong[:max_examples]
                    ],
                }
            )
        patterns.sort(key=lambda p: (-p["errors"], -p["lift"]))
        report["patterns"] = patterns[:top]
    for col in text_cols:
        report["text_clusters"].extend(_text_clusters(errors, col, top, min_support, seed))
    return report


def _text_clusters(
    errors: Sequence[LabelledExample], column: str, top: int, min_support: int, seed: int
) -> list[dict[str, Any]]:
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [str((e.prediction.inputs or {}).get(column, "")) for e in errors]
    k = min(top, max(1, len(texts) // min_support))
    vectorizer = TfidfVectorizer(stop_words="english", max_features=5_000, min_df=1)
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # nothing but stop words
        return []
    labels = KMeans(n_clusters=k, n_init=5, random_state=seed).fit_predict(matrix)
    terms = np.array(vectorizer.get_feature_names_out())
    out = []
    for c in range(k):
        members = np.flatnonzero(labels == c)
        if len(members) < min_support:
            continue
        centroid = np.asarray(matrix[members].mean(axis=0)).ravel()
        out.append(
            {
                "field": column,
                "errors": len(members),
                "top_terms": terms[np.argsort(centroid)[::-1][:8]].tolist(),
                "examples": [errors[i].prediction.id for i in members[:5]],
            }
        )
    return sorted(out, key=lambda c: -c["errors"])

"""Continuing a fitted tabular model on new data (warm start).

The new model keeps the previous version's feature plan, fitted preprocessor and classes, so
its inputs are encoded exactly as before (a category the previous version never saw becomes
all-zero one-hot columns). Only the estimator grows, by :func:`train_in_chunks` with the usual
checkpoints:

* ``lightgbm`` — ``n_estimators`` more boosting rounds continued from the previous booster;
* ``random_forest`` — ``n_estimators`` more trees fitted on the new data (``warm_start``), with
  this fit's ``max_depth`` and ``class_weight``;
* ``linear`` — refitted from the previous coefficients (see ``continue_linear``).

``hist_gradient_boosting`` is refused: it re-bins its inputs on every fit, so later trees
would not match the earlier ones.

Rows marked in :data:`~learnloop.core.family.REPLAY_COLUMN` are replayed rows: they only ever
join the training rows, so validation metrics are those of the new data.
"""

from __future__ import annotations

import copy
import hashlib
import warnings
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
import pandas as pd
from lightgbm.basic import LightGBMError

from learnloop.core.errors import Issue, SchemaMismatch, TrainingError
from learnloop.core.family import REPLAY_COLUMN, FitContext
from learnloop.families.tabular.estimators import (
    TabularModel,
    TrainingData,
    TrainingState,
    split_rows,
    train_in_chunks,
)
from learnloop.families.tabular.preprocessing import (
    apply_preprocessor,
    feature_matrix,
    numeric_ranges,
)

if TYPE_CHECKING:
    from learnloop.families.tabular.family import TabularParams

WARM_ESTIMATORS = ("lightgbm", "random_forest", "linear")


def warm_start_issues(params: TabularParams, previous: Mapping[str, Any]) -> list[Issue]:
    """Why ``params`` cannot continue a version fitted with the ``previous`` params."""
    issues = []
    if params.estimator not in WARM_ESTIMATORS:
        supported = ", ".join(WARM_ESTIMATORS)
        issues.append(
            Issue(
                "warm_start_from",
                f"estimator {params.estimator!r} cannot continue a previous version; "
                f"supported: {supported}",
            )
        )
    before = previous.get("estimator", "lightgbm")
    if before != params.estimator:
        issues.append(
            Issue("params.estimator", f"the previous version uses {before!r}; keep the same one")
        )
    if previous.get("target") != params.target:
        issues.append(
            Issue("params.target", f"the previous version predicts {previous.get('target')!r}")
        )
    return issues


def replay_mask(data: pd.DataFrame) -> np.ndarray:
    """True on the replayed rows of ``data`` (none when it has no :data:`REPLAY_COLUMN`)."""
    if REPLAY_COLUMN not in data.columns:
        return np.zeros(len(data), dtype=bool)
    return np.asarray(data[REPLAY_COLUMN].fillna(False).astype(bool).to_numpy())


def fit_warm(
    data: pd.DataFrame, params: TabularParams, ctx: FitContext, previous: TabularModel
) -> tuple[TabularModel, TrainingState]:
    """Grow a copy of ``previous`` on ``data`` (see the module docstring); ``previous`` is
    not changed. Resumes from a checkpoint of the same warm fit. Labels the previous version
    does not know, or a class missing from the training rows, raise ``SchemaMismatch``.
    """
    plan, target = previous.plan, params.target
    replayed = replay_mask(data)
    y = _encode(data[target], previous)
    matrix = feature_matrix(data, plan)
    checkpoint = ctx.load_checkpoint()
    fingerprint = _fingerprint(data, params, previous)
    if isinstance(checkpoint, TrainingState) and checkpoint.fingerprint == fingerprint:
        state = checkpoint
        total = 1 if params.estimator == "linear" else previous.rounds + params.n_estimators
        ctx.progress(state.rounds_done / total, f"resumed after {state.rounds_done} rounds")
    else:
        train, valid = _split(data, y, replayed, params, previous)
        estimator = previous.estimator
        if params.estimator == "random_forest":
            weights = {"class_weight": params.class_weight} if previous.classes else {}
            estimator = copy.deepcopy(estimator).set_params(max_depth=params.max_depth, **weights)
        prior = 0 if params.estimator == "linear" else previous.rounds
        state = TrainingState(
            fingerprint, previous.preprocessor, train, valid, estimator, rounds_done=prior
        )
    train, valid = state.train_rows, state.valid_rows
    missing = set(range(len(previous.classes))) - set(y[train].tolist())
    if previous.classes and missing:
        labels = sorted(str(previous.classes[c]) for c in missing)
        raise SchemaMismatch(
            "cannot continue the previous version",
            [Issue(target, f"classes absent from the training rows: {labels}")],
        )
    with warnings.catch_warnings():  # unseen categories are encoded as zeros, on purpose
        warnings.filterwarnings("ignore", message=".*unknown categories.*")
        x_train = apply_preprocessor(state.preprocessor, matrix[train])
        x_valid = apply_preprocessor(state.preprocessor, matrix[valid])
    split = TrainingData(previous.task, len(previous.classes), x_train, y[train], x_valid, y[valid])
    grown = params.model_copy(update={"n_estimators": state.rounds_done + params.n_estimators})
    if params.estimator == "linear":
        grown = params
    try:
        state = train_in_chunks(state, split, grown, ctx)
    except (ValueError, ArithmeticError, LightGBMError) as e:
        raise TrainingError(f"continuing {params.estimator} failed: {e}") from e
    model = replace(
        previous,
        estimator=state.estimator,
        train_mean=x_train.mean(axis=0),
        feature_ranges=_widen(previous.feature_ranges, numeric_ranges(matrix[train], plan)),
        rows_train=len(train),
        rows_valid=len(valid),
        rounds=state.rounds_done,
    )
    return model, state


def _encode(target: pd.Series, previous: TabularModel) -> np.ndarray:
    if previous.task == "regression":
        values = pd.to_numeric(target, errors="coerce").to_numpy(dtype="float64")
        if np.isnan(values).any():
            raise SchemaMismatch("bad target", [Issue(str(target.name), "missing or non-numeric")])
        return values
    codes = pd.Index(previous.classes).get_indexer(target)
    if (codes < 0).any():
        unseen = sorted({str(v) for v in target[codes < 0]})
        raise SchemaMismatch(
            "cannot continue the previous version",
            [Issue(str(target.name), f"labels the previous version does not know: {unseen}")],
        )
    return np.asarray(codes, dtype="int64")


def _split(
    data: pd.DataFrame,
    y: np.ndarray,
    replayed: np.ndarray,
    params: TabularParams,
    previous: TabularModel,
) -> tuple[np.ndarray, np.ndarray]:
    """(train, valid) positions: the new rows split as in a cold fit, replayed rows train."""
    fresh = np.flatnonzero(~replayed)
    if params.split_column:
        marks = data[params.split_column].astype(str).to_numpy()[fresh]
        train, valid = fresh[marks != "valid"], fresh[marks == "valid"]
    else:
        t, v = split_rows(y[fresh], previous.task, params.validation_fraction, params.seed)
        train, valid = fresh[t], fresh[v]
    return np.sort(np.concatenate([train, np.flatnonzero(replayed)])), valid


def _fingerprint(data: pd.DataFrame, params: TabularParams, previous: TabularModel) -> str:
    """Identifies a warm fit: params, the used columns (with the replay marks), the previous
    estimator."""
    used = [*previous.plan.features, params.target]
    frame = data[used].assign(**{REPLAY_COLUMN: replay_mask(data)})
    digest = hashlib.sha256(b"warm:" + params.model_dump_json().encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    digest.update(joblib.hash(previous.estimator).encode())
    return digest.hexdigest()


def _widen(
    before: Mapping[str, Mapping[str, float]], now: Mapping[str, Mapping[str, float]]
) -> dict[str, dict[str, float]]:
    """Per-feature ranges covering both the previous and the new training rows."""
    out = {name: dict(bounds) for name, bounds in before.items()}
    for name, bounds in now.items():
        old = out.get(name, bounds)
        out[name] = {"min": min(old["min"], bounds["min"]), "max": max(old["max"], bounds["max"])}
    return out

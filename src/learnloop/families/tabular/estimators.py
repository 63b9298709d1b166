"""Estimators of the tabular family and their incremental, checkpointable training.

Training grows the model in chunks of ``checkpoint_every`` boosting rounds (or trees):

* ``lightgbm`` — each chunk is a new ``LGBM*`` fit continued from the previous booster with
  ``init_model``; the uninterrupted and the resumed run take exactly the same steps, so a paused
  and resumed fit gives the same trees.
* ``random_forest`` — ``warm_start=True`` with ``n_estimators`` raised each chunk; tree seeds
  are drawn as in one straight fit, so the forest is the same.
* ``hist_gradient_boosting`` — ``warm_start=True`` with ``max_iter`` raised each chunk.
* ``linear`` — ``LogisticRegression`` / ``Ridge`` in one chunk (continuing a previous linear
  model when one is given, see :func:`continue_linear`).

After each chunk :func:`train_in_chunks` saves a :class:`TrainingState` checkpoint, reports
progress with the validation metrics, then calls ``ctx.check_control()``. A saved state is never
mutated afterwards (warm-started estimators are copied before they grow). Classifiers are always
trained on class codes ``0..K-1``. A fitted model is a :class:`TabularModel`: preprocessor,
estimator and what predicting and explaining need.
"""

from __future__ import annotations

import copy
import hashlib
import json
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier, LGBMRegressor
from lightgbm.basic import LightGBMError
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split

from learnloop.core.errors import TrainingError
from learnloop.core.family import FitContext
from learnloop.families.tabular.metrics import (
    Task,
    classification_metrics,
    primary_metric,
    regression_metrics,
)
from learnloop.families.tabular.preprocessing import (
    FeaturePlan,
    apply_preprocessor,
    build_preprocessor,
    encode_target,
    feature_matrix,
    infer_task,
    numeric_ranges,
    plan_columns,
    transformed_feature_owners,
)

if TYPE_CHECKING:
    from learnloop.families.tabular.family import TabularParams

EstimatorName = Literal["lightgbm", "random_forest", "hist_gradient_boosting", "linear"]
LIGHTGBM_PARALLEL_ROWS = 100_000
"""LightGBM trains on one thread below this many rows: as fast on small data, immune to the
OpenMP slow-downs of a busy machine, and the same trees whatever the core count."""


@dataclass(frozen=True)
class TrainingState:
    """A checkpoint: everything needed to continue a fit (picklable)."""

    fingerprint: str  # of params + data; a checkpoint of another fit is not resumed
    preprocessor: ColumnTransformer  # fitted on the training rows
    train_rows: np.ndarray  # positions of the training rows in the frame
    valid_rows: np.ndarray  # positions of the validation rows
    estimator: Any = None
    rounds_done: int = 0
    history: tuple[dict[str, float], ...] = ()


@dataclass(frozen=True)
class TrainingData:
    """Preprocessed matrices of one fit; ``y`` holds class codes for classification."""

    task: Task
    n_classes: int  # 0 for regression
    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray


@dataclass(frozen=True)
class TabularModel:
    """Everything a fitted tabular model needs to predict and explain (what ``save`` writes)."""

    task: Task
    estimator_name: EstimatorName
    plan: FeaturePlan
    classes: tuple[Any, ...]  # labels by class code; empty for regression
    preprocessor: ColumnTransformer
    estimator: Any
    owners: tuple[str, ...]  # the original feature of each transformed column
    train_mean: np.ndarray  # of the transformed training rows (for linear explanations)
    feature_ranges: dict[str, dict[str, float]]  # numeric feature → {"min", "max"} in training
    rows_train: int
    rows_valid: int
    rounds: int

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The estimator's input matrix for ``frame`` (raises ``SchemaMismatch`` on bad columns)."""
        return apply_preprocessor(self.preprocessor, feature_matrix(frame, self.plan))

    def predict_values(self, x: np.ndarray) -> np.ndarray:
        """Regression predictions for the transformed rows ``x``."""
        return predict_values(self.estimator, x)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Raw-score attributions, shape (rows, features + 1): one column per original feature
        (in plan order) and the bias last. Each row sums to the raw score of the positive class
        (binary), of the predicted class (multiclass) or to the prediction (regression).
        """
        if self.estimator_name == "lightgbm":
            raw = np.asarray(self.estimator.predict(x, pred_contrib=True))
            per_class = raw.reshape(len(x), -1, x.shape[1] + 1)
        elif self.estimator_name == "linear":
            coef = np.atleast_2d(self.estimator.coef_)
            bias = np.atleast_1d(self.estimator.intercept_) + coef @ self.train_mean
            centred = (x - self.train_mean)[:, None, :] * coef[None, :, :]
            bias_column = np.broadcast_to(bias[None, :, None], (len(x), len(coef), 1))
            per_class = np.concatenate([centred, bias_column], axis=2)
        else:
            raise NotImplementedError(
                f"explanations exist for lightgbm and linear, not {self.estimator_name}"
            )
        chosen = per_class.sum(axis=2).argmax(axis=1) if per_class.shape[1] > 1 else 0
        rows = per_class[np.arange(len(x)), chosen]
        names = list(self.plan.features)
        by_owner = np.zeros((len(self.owners), len(names)))
        by_owner[np.arange(len(self.owners)), [names.index(o) for o in self.owners]] = 1.0
        return np.column_stack([rows[:, :-1] @ by_owner, rows[:, -1]])


def fit_model(
    data: pd.DataFrame, params: TabularParams, ctx: FitContext
) -> tuple[TabularModel, TrainingState]:
    """Fit on a validated frame; resumes from ``ctx.load_checkpoint()`` when that checkpoint
    belongs to this fit (same params, same data), else starts over. Estimator failures raise
    ``TrainingError``; ``ctx.check_control()`` may raise ``JobPaused``/``JobCancelled``.
    """
    checkpoint = ctx.load_checkpoint()
    drop = [*params.drop_columns, *([params.split_column] if params.split_column else [])]
    plan = plan_columns(data, params.target, drop)
    task = infer_task(data[params.target], params.task)
    y, classes = encode_target(data[params.target], task)
    matrix = feature_matrix(data, plan)
    fingerprint = _fingerprint(data[[*plan.features, params.target]], params)
    if isinstance(checkpoint, TrainingState) and checkpoint.fingerprint == fingerprint:
        state = checkpoint
        fraction = state.rounds_done / total_rounds(params)
        ctx.progress(fraction, f"resumed after {state.rounds_done} rounds")
    else:
        if params.split_column:
            marks = data[params.split_column].astype(str).to_numpy()
            rows = np.arange(len(data))
            train, valid = rows[marks != "valid"], rows[marks == "valid"]
        else:
            train, valid = split_rows(y, task, params.validation_fraction, params.seed)
        preprocessor = build_preprocessor(plan, scale=params.estimator == "linear")
        state = TrainingState(fingerprint, preprocessor.fit(matrix[train]), train, valid)
    train, valid = state.train_rows, state.valid_rows
    x_train = apply_preprocessor(state.preprocessor, matrix[train])
    x_valid = apply_preprocessor(state.preprocessor, matrix[valid])
    split = TrainingData(task, len(classes), x_train, y[train], x_valid, y[valid])
    try:
        state = train_in_chunks(state, split, params, ctx)
    except (ValueError, ArithmeticError, LightGBMError) as e:
        raise TrainingError(f"fitting {params.estimator} failed: {e}") from e
    model = TabularModel(
        task=task,
        estimator_name=params.estimator,
        plan=plan,
        classes=classes,
        preprocessor=state.preprocessor,
        estimator=state.estimator,
        owners=tuple(transformed_feature_owners(state.preprocessor, plan)),
        train_mean=x_train.mean(axis=0),
        feature_ranges=numeric_ranges(matrix[train], plan),
        rows_train=len(train),
        rows_valid=len(valid),
        rounds=state.rounds_done,
    )
    return model, state


def _fingerprint(frame: pd.DataFrame, params: TabularParams) -> str:
    """Identifies a fit (params + the used columns' content); checkpoints must match it."""
    digest = hashlib.sha256(params.model_dump_json().encode())
    digest.update(json.dumps([str(c) for c in frame.columns]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def total_rounds(params: TabularParams) -> int:
    """Units of work of a full fit: 1 for ``linear``, else ``n_estimators``."""
    return 1 if params.estimator == "linear" else params.n_estimators


def split_rows(
    target: np.ndarray, task: Task, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, validation) row positions.

    Classification splits are stratified when possible; rows of a class seen only once go to
    training, so every class can be learnt.
    """
    rows = np.arange(len(target))
    if task == "regression":
        train, valid = train_test_split(rows, test_size=fraction, random_state=seed)
        return np.sort(train), np.sort(valid)
    single = np.bincount(target)[target] < 2
    rest = rows[~single]
    try:
        train, valid = train_test_split(
            rest, test_size=fraction, random_state=seed, stratify=target[rest]
        )
    except ValueError:  # too few rows to hold out one of each class: split at random
        train, valid = train_test_split(rest, test_size=fraction, random_state=seed)
    return np.sort(np.concatenate([train, rows[single]])), np.sort(valid)


def train_in_chunks(
    state: TrainingState, data: TrainingData, params: TabularParams, ctx: FitContext
) -> TrainingState:
    """Grow ``state.estimator`` to :func:`total_rounds`, checkpointing after every chunk."""
    total = total_rounds(params)
    while state.rounds_done < total:
        rounds = min(params.checkpoint_every, total - state.rounds_done)
        estimator = grow_estimator(state.estimator, params, data, state.rounds_done, rounds)
        metrics = validation_metrics(estimator, data)
        done = state.rounds_done + rounds
        state = replace(
            state,
            estimator=estimator,
            rounds_done=done,
            history=(*state.history, {"step": float(done), **metrics}),
        )
        ctx.save_checkpoint(state, step=done)
        name, value = primary_metric(data.task, metrics)
        ctx.progress(done / total, f"{done}/{total} rounds, validation {name}={value:.4f}", metrics)
        ctx.check_control()
    return state


def grow_estimator(
    previous: Any, params: TabularParams, data: TrainingData, rounds_done: int, rounds: int
) -> Any:
    """A new estimator: ``previous`` (``None`` at the start) grown by ``rounds`` rounds."""
    classify = data.task == "classification"
    class_weight = params.class_weight if classify else None
    if params.estimator == "lightgbm":
        kind = LGBMClassifier if classify else LGBMRegressor
        model = kind(
            n_estimators=rounds,
            learning_rate=params.learning_rate,
            num_leaves=params.num_leaves,
            max_depth=-1 if params.max_depth is None else params.max_depth,
            class_weight=class_weight,
            random_state=params.seed,
            deterministic=True,
            force_col_wise=True,
            n_jobs=1 if len(data.x_train) < LIGHTGBM_PARALLEL_ROWS else None,
            verbose=-1,
        )
        init_model = None if previous is None else previous.booster_
        return model.fit(data.x_train, data.y_train, init_model=init_model)
    if params.estimator == "linear":
        if previous is not None:
            return continue_linear(previous, data)
        if classify:
            linear = LogisticRegression(
                max_iter=2000, class_weight=class_weight, random_state=params.seed
            )
            return linear.fit(data.x_train, data.y_train)
        return Ridge(alpha=1.0).fit(data.x_train, data.y_train)
    model = copy.deepcopy(previous) if previous is not None else _new_warm_start(params, data)
    if params.estimator == "hist_gradient_boosting":
        return model.set_params(max_iter=rounds_done + rounds).fit(data.x_train, data.y_train)
    # Forests grow on every core but predict on one: thread start-up costs more than it saves
    # on the small batches a served model sees.
    model.set_params(n_estimators=rounds_done + rounds, n_jobs=-1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not recommended for warm_start.*")
        model.fit(data.x_train, data.y_train)
    return model.set_params(n_jobs=1)


def continue_linear(previous: Any, data: TrainingData) -> Any:
    """A copy of the fitted linear model ``previous`` refitted on ``data`` from its coefficients.

    A logistic regression starts its solver there (``warm_start``). A ridge is fitted to what
    ``previous`` leaves unexplained, so its penalty pulls towards the previous coefficients
    instead of towards zero.
    """
    model = copy.deepcopy(previous)
    if isinstance(model, LogisticRegression):
        model.set_params(warm_start=True).fit(data.x_train, data.y_train)
        return model.set_params(warm_start=False)
    residual = data.y_train - previous.predict(data.x_train)
    delta = Ridge(alpha=previous.alpha).fit(data.x_train, residual)
    model.coef_ = previous.coef_ + delta.coef_
    model.intercept_ = previous.intercept_ + delta.intercept_
    return model


def _new_warm_start(params: TabularParams, data: TrainingData) -> Any:
    classify = data.task == "classification"
    weights = {"class_weight": params.class_weight} if classify else {}
    if params.estimator == "random_forest":
        forest = RandomForestClassifier if classify else RandomForestRegressor
        return forest(
            max_depth=params.max_depth,
            random_state=params.seed,
            warm_start=True,
            **weights,
        )
    boosting = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
    return boosting(
        learning_rate=params.learning_rate,
        max_leaf_nodes=params.num_leaves,
        max_depth=params.max_depth,
        early_stopping=False,
        random_state=params.seed,
        warm_start=True,
        **weights,
    )


def predict_probabilities(estimator: Any, x: np.ndarray, n_classes: int) -> np.ndarray:
    """Class probabilities, one column per class code (codes unseen in training get 0).

    LightGBM models are asked through their booster: the numbers ``predict_proba`` gives,
    without the wrapper's per-call overhead.
    """
    seen = np.asarray(estimator.classes_, dtype=int)
    if isinstance(estimator, LGBMClassifier):
        probabilities = np.asarray(estimator.booster_.predict(x), dtype="float64")
        if probabilities.ndim == 1:
            probabilities = np.column_stack([1.0 - probabilities, probabilities])
    elif isinstance(estimator, RandomForestClassifier):
        probabilities = _forest_mean(estimator, x, "predict_proba")
    else:
        probabilities = estimator.predict_proba(x)
    if len(seen) == n_classes:
        return np.asarray(probabilities, dtype="float64")
    full = np.zeros((len(x), n_classes))
    full[:, seen] = probabilities
    return full


def predict_values(estimator: Any, x: np.ndarray) -> np.ndarray:
    """Regression predictions (through the booster for LightGBM, as above)."""
    if isinstance(estimator, LGBMRegressor):
        return np.asarray(estimator.booster_.predict(x), dtype="float64")
    if isinstance(estimator, RandomForestRegressor):
        return _forest_mean(estimator, x, "predict")
    return np.asarray(estimator.predict(x), dtype="float64")


def _forest_mean(forest: Any, x: np.ndarray, method: str) -> np.ndarray:
    """The forest's own average over its trees, without joblib's per-call dispatch (which
    costs more than the trees themselves on the few rows a served request carries)."""
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    total = None
    for tree in forest.estimators_:
        part = getattr(tree, method)(x32, check_input=False)
        total = part.astype("float64") if total is None else total + part
    assert total is not None
    return np.asarray(total / len(forest.estimators_), dtype="float64")


def validation_metrics(estimator: Any, data: TrainingData) -> dict[str, float]:
    """Metrics of ``estimator`` on the validation rows."""
    if data.task == "classification":
        probabilities = predict_probabilities(estimator, data.x_valid, data.n_classes)
        return classification_metrics(data.y_valid, probabilities)
    return regression_metrics(data.y_valid, predict_values(estimator, data.x_valid))

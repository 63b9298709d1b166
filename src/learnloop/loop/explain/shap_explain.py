"""SHAP attributions for a fitted tabular family, per original feature.

Which explainer (``explainer="auto"``):

* ``tree`` — ``shap.TreeExplainer`` for ``lightgbm``, ``random_forest`` and
  ``hist_gradient_boosting``. Without ``background`` it is ``tree_path_dependent`` (exact, no
  data needed, conditional on the training distribution the trees recorded); with
  ``background`` it is ``interventional`` (features absent from a coalition take values from the
  background rows). Values are in the model's raw space: log-odds of the positive class
  (binary boosting), the predicted class's raw score (multiclass boosting), the class
  probability (forests, whose trees output probabilities) or target units (regression).
* ``linear`` — ``shap.LinearExplainer`` with independent features: coefficient × distance from
  the background mean (the training mean when no background is given), in margin space.
* ``kernel`` — ``shap.KernelExplainer`` on the original features (a categorical feature is one
  player), in probability space; it needs ``background`` and costs ``nsamples`` × background
  rows model calls per row. Used for any other estimator, or when asked for.

Tree and linear attributions of the transformed columns (one-hot levels, missing indicators,
date parts) are summed into their original feature through ``TabularModel.owners``; the sum
keeps additivity, so ``base_value + sum(attributions) == output`` for every row.
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier

from learnloop.core.errors import InvalidInput, Issue
from learnloop.families.tabular.estimators import (
    TabularModel,
    predict_probabilities,
    predict_values,
)
from learnloop.families.tabular.preprocessing import apply_preprocessor, feature_matrix
from learnloop.loop.explain.inputs import (
    Rows,
    explained_codes,
    fitted_model,
    optional_module,
    owner_matrix,
    plain,
    rows_frame,
    sample_frame,
)

ExplainerName = Literal["auto", "tree", "linear", "kernel"]
TREE_ESTIMATORS = frozenset({"lightgbm", "random_forest", "hist_gradient_boosting"})
_TREE_EXPLAINERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
"""Background-free tree explainers by estimator: building one parses every tree (about 0.1 s
for 200 LightGBM trees), explaining a few rows with it takes milliseconds."""


@dataclass(frozen=True)
class ShapValues:
    """Attributions of one explained output per row, by original feature (plan order)."""

    explainer: str
    perturbation: str  # "tree_path_dependent", "interventional" or "kernel"
    space: str  # "log_odds", "raw_score", "probability" or "target"
    values: np.ndarray  # (rows, features)
    base: np.ndarray  # (rows,) the expected output the attributions start from
    output: np.ndarray  # (rows,) the model's own output in ``space``, computed independently
    codes: np.ndarray  # (rows,) class code explained (0 for regression)


def explain_shap(
    family_instance: Any,
    rows: Rows,
    *,
    background: pd.DataFrame | None = None,
    max_background: int = 100,
    nsamples: int | str = "auto",
    seed: int = 0,
    explainer: ExplainerName = "auto",
) -> dict[str, Any]:
    """SHAP explanations of ``rows`` by a fitted tabular family (a JSON-able dict).

    ``background`` (original features; at most ``max_background`` rows drawn with ``seed`` are
    used) switches trees to interventional SHAP and is required by the kernel explainer;
    ``nsamples`` is the kernel explainer's coalition budget. Each row reports the family's
    ``prediction``, the explained ``class`` (classification), its ``base_value``, its
    ``attributions`` by original feature and ``sum_check`` comparing ``base_value`` plus the
    attributions with the model's own ``output``. Bad rows raise ``InvalidInput``/
    ``SchemaMismatch`` naming the field; a missing extra raises ``MissingDependency``.
    """
    model = fitted_model(family_instance)
    frame = rows_frame(family_instance, rows)
    result = shap_values(
        model,
        frame,
        background=background,
        max_background=max_background,
        nsamples=nsamples,
        seed=seed,
        explainer=explainer,
    )
    names = list(model.plan.features)
    predictions = family_instance.predict_frame(frame)
    explained_rows = []
    for i, output in enumerate(predictions):
        total = float(result.base[i] + result.values[i].sum())
        row: dict[str, Any] = {"prediction": plain(output.prediction)}
        if model.task == "classification":
            row["class"] = plain(model.classes[int(result.codes[i])])
            row["probabilities"] = output.probabilities
        row |= {
            "base_value": float(result.base[i]),
            "output": float(result.output[i]),
            "attributions": dict(zip(names, map(float, result.values[i]), strict=True)),
            "sum_check": {
                "base_plus_sum": total,
                "model_output": float(result.output[i]),
                "abs_error": abs(total - float(result.output[i])),
            },
        }
        explained_rows.append(row)
    bases = {float(b) for b in result.base}
    return {
        "method": "shap",
        "explainer": result.explainer,
        "feature_perturbation": result.perturbation,
        "space": result.space,
        "base_value": bases.pop() if len(bases) == 1 else None,
        "features": names,
        "rows": explained_rows,
    }


def shap_values(
    model: TabularModel,
    frame: pd.DataFrame,
    *,
    background: pd.DataFrame | None,
    max_background: int,
    nsamples: int | str,
    seed: int,
    explainer: ExplainerName,
) -> ShapValues:
    """The attributions behind :func:`explain_shap` for a checked frame of original features."""
    name = explainer
    if name == "auto":
        name = "tree" if model.estimator_name in TREE_ESTIMATORS else "linear"
        name = name if model.estimator_name in (*TREE_ESTIMATORS, "linear") else "kernel"
    if name == "tree" and model.estimator_name not in TREE_ESTIMATORS:
        raise InvalidInput("cannot explain", [Issue("explainer", "tree needs a tree model")])
    if name == "linear" and model.estimator_name != "linear":
        raise InvalidInput("cannot explain", [Issue("explainer", "linear needs a linear model")])
    shap = optional_module("shap")
    sample = None if background is None else sample_frame(background, max_background, seed)
    if name == "kernel":
        return _kernel(shap, model, frame, sample, nsamples, seed)
    x = model.transform(frame)
    x_background = None if sample is None else model.transform(sample)
    if name == "tree":
        perturbation = "tree_path_dependent" if x_background is None else "interventional"
        tree = _TREE_EXPLAINERS.get(model.estimator) if x_background is None else None
        if tree is None:
            tree = shap.TreeExplainer(
                model.estimator,
                data=x_background,
                feature_perturbation=perturbation,
                model_output="raw",
            )
            if x_background is None:
                _TREE_EXPLAINERS[model.estimator] = tree
        with warnings.catch_warnings():  # "output has changed to a list" (LightGBM binary)
            warnings.filterwarnings("ignore", message=".*shap values output has changed.*")
            raw = tree.shap_values(x, check_additivity=False)
        expected = tree.expected_value
    else:
        perturbation = "interventional"
        data = model.train_mean[None, :] if x_background is None else x_background
        masker = shap.maskers.Independent(data, max_samples=max(len(data), 1))
        linear = shap.LinearExplainer(model.estimator, masker)
        raw, expected = linear.shap_values(x), linear.expected_value
    values, base = _by_output(raw, expected, len(x))
    codes = explained_codes(model, x)
    outputs = _raw_outputs(model, x)
    column = _output_column(model, codes, values.shape[2])
    rows = np.arange(len(x))
    return ShapValues(
        explainer=name,
        perturbation=perturbation,
        space=_space(model),
        values=values[rows, :, column] @ owner_matrix(model),
        base=base[column],
        output=outputs[rows, column],
        codes=codes,
    )


def _kernel(
    shap: Any,
    model: TabularModel,
    frame: pd.DataFrame,
    background: pd.DataFrame | None,
    nsamples: int | str,
    seed: int,
) -> ShapValues:
    """Kernel SHAP over the original features (each one a player), in probability space."""
    if background is None:
        raise InvalidInput(
            "cannot explain", [Issue("background", "the kernel explainer needs background rows")]
        )
    n_classes = len(model.classes)

    def predict(matrix: np.ndarray) -> np.ndarray:
        x = apply_preprocessor(model.preprocessor, matrix)
        if model.task == "regression":
            return predict_values(model.estimator, x)
        return predict_probabilities(model.estimator, x, n_classes)

    matrix = feature_matrix(frame, model.plan)
    kernel = shap.KernelExplainer(predict, feature_matrix(background, model.plan))
    with _numpy_seed(seed):
        raw = kernel.shap_values(matrix, nsamples=nsamples, silent=True)
    values, base = _by_output(raw, kernel.expected_value, len(frame))
    x = model.transform(frame)
    codes = explained_codes(model, x)
    outputs = predict(matrix)
    outputs = outputs[:, None] if outputs.ndim == 1 else outputs
    rows = np.arange(len(frame))
    column = codes if model.task == "classification" else np.zeros(len(frame), dtype=int)
    return ShapValues(
        explainer="kernel",
        perturbation="kernel",
        space="probability" if model.task == "classification" else "target",
        values=values[rows, :, column],
        base=base[column],
        output=outputs[rows, column],
        codes=codes,
    )


@contextlib.contextmanager
def _numpy_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global generator (KernelExplainer samples from it), then restore it."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _by_output(raw: Any, expected: Any, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """SHAP values as (rows, columns, outputs) and expected values as (outputs,)."""
    if isinstance(raw, list):  # one array per output (older shap releases)
        values = np.stack([np.asarray(v) for v in raw], axis=-1)
    else:
        values = np.asarray(raw, dtype="float64")
        values = values[:, :, None] if values.ndim == 2 else values
    base = np.atleast_1d(np.asarray(expected, dtype="float64")).reshape(-1)
    return values.reshape(n_rows, -1, values.shape[-1]), base


def _output_column(model: TabularModel, codes: np.ndarray, n_outputs: int) -> np.ndarray:
    """Which output column holds each row's explained class."""
    if n_outputs == 1:
        return np.zeros(len(codes), dtype=int)
    seen = np.asarray(model.estimator.classes_, dtype=int)
    return np.asarray(np.searchsorted(seen, codes), dtype=int)


def _raw_outputs(model: TabularModel, x: np.ndarray) -> np.ndarray:
    """The model's output in the tree/linear explainers' space, as (rows, outputs)."""
    estimator = model.estimator
    if model.task == "regression":
        out = predict_values(estimator, x)
    elif isinstance(estimator, LGBMClassifier):
        out = np.asarray(estimator.booster_.predict(x, raw_score=True), dtype="float64")
    elif model.estimator_name == "random_forest":
        out = np.asarray(estimator.predict_proba(x), dtype="float64")
    else:
        out = np.asarray(estimator.decision_function(x), dtype="float64")
    return out[:, None] if out.ndim == 1 else out


def _space(model: TabularModel) -> str:
    if model.task == "regression":
        return "target"
    if model.estimator_name == "random_forest":
        return "probability"
    return "log_odds" if len(model.classes) == 2 else "raw_score"

"""LIME explanations for a fitted tabular family, on the original features.

``lime.lime_tabular.LimeTabularExplainer`` needs a float matrix, so the original features are
encoded (:class:`LimeEncoding`): numbers as they are (missing values filled with the training
median: LIME's quartiles cannot hold NaN), categories as codes (declared as
``categorical_features``, so LIME samples them from their training frequencies and reports
``feature=value``), datetimes as seconds since the epoch. The prediction function decodes LIME's
perturbed samples back into a frame and runs the family's preprocessor and estimator on it.

Each explanation is about the same output as SHAP's: the positive class's probability
(binary), the predicted class's probability (multiclass) or the predicted value (regression).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from learnloop.families.tabular.estimators import (
    TabularModel,
    predict_probabilities,
    predict_values,
)
from learnloop.families.tabular.preprocessing import to_timestamps
from learnloop.loop.explain.inputs import (
    Rows,
    explained_codes,
    fitted_model,
    optional_module,
    plain,
    rows_frame,
)

MISSING = "<missing>"  # how a missing category is shown in a LIME condition


@dataclass(frozen=True)
class LimeEncoding:
    """A two-way map between frames of original features and LIME's float matrices."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    categories: dict[int, list[Any]]  # column → category values by code (None: missing)
    fill: dict[int, float]  # numeric or datetime column → value that replaces a missing one

    @classmethod
    def fit(cls, model: TabularModel, frames: list[pd.DataFrame]) -> LimeEncoding:
        """Categories seen in any of ``frames``; fills from the first (the training frame)."""
        names = tuple(model.plan.features)
        kinds = tuple(model.plan.features.values())
        categories, fill = {}, {}
        for j, (name, kind) in enumerate(zip(names, kinds, strict=True)):
            if kind == "categorical":
                values = pd.concat([frame[name] for frame in frames], ignore_index=True)
                seen = {str(v): plain(v) for v in values.dropna().unique()}
                levels: list[Any] = [seen[key] for key in sorted(seen)]
                categories[j] = levels + ([None] if values.isna().any() else [])
            else:
                median = np.nanmedian(_numbers(frames[0][name], kind)) if len(frames[0]) else 0.0
                fill[j] = 0.0 if np.isnan(median) else float(median)
        return cls(names, kinds, categories, fill)

    @property
    def categorical_columns(self) -> list[int]:
        return sorted(self.categories)

    def category_names(self) -> dict[int, list[str]]:
        return {
            j: [MISSING if v is None else str(v) for v in c] for j, c in self.categories.items()
        }

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """(rows, features) floats: numbers, category codes, epoch seconds."""
        out = np.empty((len(frame), len(self.names)))
        for j, (name, kind) in enumerate(zip(self.names, self.kinds, strict=True)):
            if j in self.categories:
                levels = self.categories[j]
                lookup = {str(v): code for code, v in enumerate(levels) if v is not None}
                missing = len(levels) - 1 if levels and levels[-1] is None else -1
                out[:, j] = [missing if pd.isna(v) else lookup[str(v)] for v in frame[name]]
            else:
                numbers = _numbers(frame[name], kind)
                out[:, j] = np.where(np.isnan(numbers), self.fill[j], numbers)
        return out

    def decode(self, matrix: np.ndarray) -> pd.DataFrame:
        """A frame of original features for LIME's samples (codes rounded to the nearest)."""
        columns: dict[str, Any] = {}
        for j, (name, kind) in enumerate(zip(self.names, self.kinds, strict=True)):
            if j in self.categories:
                levels = self.categories[j]
                codes = np.clip(np.rint(matrix[:, j]).astype(int), 0, len(levels) - 1)
                columns[name] = pd.Series([levels[c] for c in codes], dtype=object)
            elif kind == "datetime":
                columns[name] = pd.to_datetime(matrix[:, j], unit="s", utc=True)
            else:
                columns[name] = matrix[:, j]
        return pd.DataFrame(columns)


def explain_lime(
    family_instance: Any,
    rows: Rows,
    *,
    training_frame: pd.DataFrame,
    num_features: int = 10,
    num_samples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """LIME explanations of ``rows`` (a JSON-able dict).

    ``training_frame`` (original features; extra columns ignored) gives LIME its sampling
    statistics. Each row reports the family's ``prediction``, the explained ``class``
    (classification), ``weights`` by LIME condition (``"Torque [Nm] > 46.80"``,
    ``"Type=L"``), the same ``feature_weights`` by feature name, the local model's
    ``intercept``, ``score`` (its weighted R² on the samples) and ``local_prediction``, and the
    model's own ``output``. The same ``seed`` gives the same weights. Bad rows raise
    ``InvalidInput``/``SchemaMismatch`` naming the field.
    """
    model = fitted_model(family_instance)
    frame = rows_frame(family_instance, rows)
    training = rows_frame(family_instance, training_frame, field="training_frame")
    lime_tabular = optional_module("lime.lime_tabular")
    encoding = LimeEncoding.fit(model, [training, frame])
    classify = model.task == "classification"
    explainer = lime_tabular.LimeTabularExplainer(
        encoding.encode(training),
        mode="classification" if classify else "regression",
        feature_names=list(encoding.names),
        categorical_features=encoding.categorical_columns,
        categorical_names=encoding.category_names(),
        class_names=[str(c) for c in model.classes] if classify else None,
        discretize_continuous=True,
        random_state=seed,
    )
    predict = _predict_function(model, encoding)
    x = model.transform(frame)
    codes = explained_codes(model, x)
    outputs = predict(encoding.encode(frame))
    predictions = family_instance.predict_frame(frame)
    explained = []
    for i, row in enumerate(encoding.encode(frame)):
        label = int(codes[i]) if classify else 1  # lime files a regression under label 1
        explanation = explainer.explain_instance(
            row,
            predict,
            labels=(label,),
            num_features=num_features,
            num_samples=num_samples,
        )
        by_feature = {encoding.names[j]: float(w) for j, w in explanation.as_map()[label]}
        result: dict[str, Any] = {"prediction": plain(predictions[i].prediction)}
        if classify:
            result["class"] = plain(model.classes[label])
        explained.append(
            result
            | {
                "output": float(outputs[i, label] if classify else outputs[i]),
                "weights": dict(explanation.as_list(label=label)),
                "feature_weights": by_feature,
                "intercept": float(explanation.intercept[label]),
                "score": float(explanation.score),
                "local_prediction": float(np.ravel(explanation.local_pred)[0]),
            }
        )
    return {"method": "lime", "num_samples": num_samples, "rows": explained}


def _predict_function(
    model: TabularModel, encoding: LimeEncoding
) -> Callable[[np.ndarray], np.ndarray]:
    """LIME's ``predict_fn``: encoded samples → class probabilities or predicted values."""

    def predict(matrix: np.ndarray) -> np.ndarray:
        x = model.transform(encoding.decode(matrix))
        if model.task == "regression":
            return predict_values(model.estimator, x)
        return predict_probabilities(model.estimator, x, len(model.classes))

    return predict


def _numbers(column: pd.Series, kind: str) -> np.ndarray:
    """A numeric or datetime column as floats (epoch seconds for datetimes), NaN if missing."""
    if kind == "datetime":
        stamps = to_timestamps(pd.Series(column, dtype=object))
        seconds = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
        return np.asarray(seconds.to_numpy(dtype="float64", na_value=np.nan))
    numbers = pd.to_numeric(column, errors="coerce")
    return np.asarray(numbers.to_numpy(dtype="float64", na_value=np.nan))

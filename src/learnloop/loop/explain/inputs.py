"""What every explainer takes from a fitted tabular family.

* :func:`fitted_model` — the family's :class:`TabularModel` (``Conflict`` before ``fit``/``load``);
* :func:`rows_frame` — the rows to explain as a frame of the model's original features, checked
  the way the family checks them (``InvalidInput``/``SchemaMismatch`` naming the field);
* :func:`explained_codes` — which output each explanation is about: the positive class (code 1)
  of a binary classifier, the predicted class of a multiclass one, the value of a regressor;
* :func:`owner_matrix` — the 0/1 matrix that sums transformed columns into original features.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from learnloop.core.errors import InvalidInput, Issue, MissingDependency
from learnloop.families.tabular.estimators import TabularModel, predict_probabilities
from learnloop.families.tabular.preprocessing import feature_matrix

EXTRA = "explain"  # the optional dependency group holding shap and lime

Rows = pd.DataFrame | Sequence[Mapping[str, Any]]


def optional_module(name: str) -> ModuleType:
    """Import ``name`` (``shap``, ``lime.lime_tabular``) or raise ``MissingDependency``."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise MissingDependency(name.split(".")[0], EXTRA) from e


def fitted_model(family: Any) -> TabularModel:
    """The fitted model held by a tabular family instance.

    Raises ``Conflict`` when the family is not fitted or loaded, ``TypeError`` when ``family``
    is not a tabular family.
    """
    fitted = getattr(family, "_fitted", None)
    model = fitted() if callable(fitted) else None
    if not isinstance(model, TabularModel):
        raise TypeError(f"expected a fitted tabular family, got {type(family).__name__}")
    return model


def rows_frame(family: Any, rows: Rows, *, field: str = "rows") -> pd.DataFrame:
    """``rows`` as a frame holding exactly the model's features, in plan order, indexed 0..n-1.

    A list of dicts goes through ``family.validate_inputs`` (``InvalidInput`` naming
    ``inputs[i].<feature>``); a frame is checked column by column (``SchemaMismatch`` naming the
    missing or non-numeric column). Extra columns are ignored. No rows is an ``InvalidInput``
    on ``field``.
    """
    model = fitted_model(family)
    names = list(model.plan.features)
    if isinstance(rows, pd.DataFrame):
        feature_matrix(rows, model.plan)  # raises SchemaMismatch naming each bad column
        frame = rows[names].reset_index(drop=True)
    else:
        items = family.validate_inputs(list(rows))
        records = [item.model_extra or {} for item in items]
        frame = pd.DataFrame.from_records(records, columns=names)
    if frame.empty:
        raise InvalidInput("nothing to explain", [Issue(field, "at least one row is needed")])
    return frame


def sample_frame(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """At most ``n`` rows of ``frame``, drawn without replacement with ``seed``, in frame order."""
    if len(frame) <= n:
        return frame
    return frame.sample(n=n, random_state=seed).sort_index()


def explained_codes(model: TabularModel, x: np.ndarray) -> np.ndarray:
    """Per transformed row, the class code an explanation is about (0 for regression)."""
    if model.task == "regression":
        return np.zeros(len(x), dtype=int)
    if len(model.classes) == 2:
        return np.ones(len(x), dtype=int)
    probabilities = predict_probabilities(model.estimator, x, len(model.classes))
    return np.asarray(probabilities.argmax(axis=1), dtype=int)


def owner_matrix(model: TabularModel) -> np.ndarray:
    """(transformed columns, original features): 1 where the column belongs to the feature."""
    names = list(model.plan.features)
    owners = np.zeros((len(model.owners), len(names)))
    owners[np.arange(len(model.owners)), [names.index(o) for o in model.owners]] = 1.0
    return owners


def plain(value: Any) -> Any:
    """A JSON-able Python scalar for a numpy or pandas scalar (labels, predictions)."""
    if isinstance(value, np.generic):
        return value.item()
    return value

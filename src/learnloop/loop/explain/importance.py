"""Global feature importance of a fitted tabular family, per original feature.

Two views, side by side:

* ``importance`` — mean |SHAP| over a sample of ``frame`` (the explainer that
  :func:`~learnloop.loop.explain.shap_explain.explain_shap` would choose, without background;
  for the kernel explainer a small sample of ``frame`` is the background and fewer rows are
  explained, see ``KERNEL_ROWS``), in the model's explained space;
* ``estimator_importance`` — the estimator's own figure summed over each feature's transformed
  columns and scaled to sum to 1: total split gain (LightGBM), mean impurity decrease (forests),
  |coefficient| on standardised inputs (linear); ``None`` when the estimator has none
  (hist gradient boosting).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from learnloop.families.tabular.estimators import TabularModel
from learnloop.loop.explain.inputs import fitted_model, owner_matrix, rows_frame, sample_frame
from learnloop.loop.explain.shap_explain import TREE_ESTIMATORS, shap_values

KERNEL_ROWS = 50  # rows explained by kernel SHAP (each costs nsamples × background calls)
KERNEL_BACKGROUND = 20


def global_importance(
    family_instance: Any, frame: pd.DataFrame, *, max_rows: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Mean |SHAP| per original feature over at most ``max_rows`` rows of ``frame`` (drawn with
    ``seed``), sorted descending, with the estimator's own importance (a JSON-able dict).

    Returns ``{"method": "mean_abs_shap", "explainer", "space", "rows", "importance":
    [{"feature", "mean_abs_shap", "share"}], "estimator_importance": {"type", "values"} | None}``.
    Bad frames raise ``SchemaMismatch`` naming the column.
    """
    model = fitted_model(family_instance)
    rows = rows_frame(family_instance, frame, field="frame")
    kernel = model.estimator_name not in (*TREE_ESTIMATORS, "linear")
    sample = sample_frame(rows, min(max_rows, KERNEL_ROWS) if kernel else max_rows, seed)
    result = shap_values(
        model,
        sample.reset_index(drop=True),
        background=sample_frame(rows, KERNEL_BACKGROUND, seed + 1) if kernel else None,
        max_background=KERNEL_BACKGROUND,
        nsamples="auto",
        seed=seed,
        explainer="auto",
    )
    mean_abs = np.abs(result.values).mean(axis=0)
    total = float(mean_abs.sum()) or 1.0
    order = np.argsort(-mean_abs, kind="stable")
    names = list(model.plan.features)
    return {
        "method": "mean_abs_shap",
        "explainer": result.explainer,
        "space": result.space,
        "rows": len(sample),
        "importance": [
            {
                "feature": names[j],
                "mean_abs_shap": float(mean_abs[j]),
                "share": float(mean_abs[j]) / total,
            }
            for j in order
        ],
        "estimator_importance": estimator_importance(model),
    }


def estimator_importance(model: TabularModel) -> dict[str, Any] | None:
    """The estimator's own importance by original feature (shares, sorted descending)."""
    estimator = model.estimator
    if model.estimator_name == "lightgbm":
        kind = "split_gain"
        raw = estimator.booster_.feature_importance(importance_type="gain")
    elif model.estimator_name == "linear":
        kind = "abs_coefficient"
        raw = np.abs(np.atleast_2d(estimator.coef_)).sum(axis=0)
    elif hasattr(estimator, "feature_importances_"):
        kind = "impurity_decrease"
        raw = estimator.feature_importances_
    else:
        return None
    by_feature = np.asarray(raw, dtype="float64") @ owner_matrix(model)
    total = float(by_feature.sum()) or 1.0
    names = list(model.plan.features)
    order = np.argsort(-by_feature, kind="stable")
    return {"type": kind, "values": {names[j]: float(by_feature[j]) / total for j in order}}

"""Forecast accuracy: MASE, sMAPE and the coverage of prediction intervals.

``y_true`` and ``y_pred`` are one forecast horizon (or several concatenated); ``y_train`` is the
history the forecaster saw, used to scale MASE.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from learnloop.core.errors import InvalidInput, Issue
from learnloop.loop.evaluation.metrics import finite, paired_vectors


def forecasting_metrics(
    y_true: Sequence[float],
    y_pred: Sequence[float],
    *,
    y_train: Sequence[float],
    season: int = 1,
    lower: Sequence[float] | None = None,
    upper: Sequence[float] | None = None,
) -> dict[str, float]:
    """``mae``, ``rmse``, ``mase``, ``smape``; given bounds, ``coverage`` and ``interval_width``.

    * ``mase = mean|y - ŷ| / mean_{t ≥ m}|y_train[t] - y_train[t - m]|`` with ``m = season``:
      the forecast's MAE over the in-sample MAE of the seasonal naive forecast (1 = as good as
      repeating the value one season back). Left out when the history has at most ``season``
      values or the naive forecast is perfect (scale 0);
    * ``smape = mean(2 |y - ŷ| / (|y| + |ŷ|))``, a fraction in ``[0, 2]``; a row with
      ``y = ŷ = 0`` counts as 0;
    * ``coverage`` — share of rows with ``lower ≤ y ≤ upper``; ``interval_width`` — mean
      ``upper - lower``. Both bounds must be given together.

    Raises :class:`InvalidInput` on mismatched lengths, non-finite values, ``season < 1``, only
    one bound given, or ``lower > upper`` on some row.
    """
    truth, predicted = paired_vectors(y_true, y_pred, "y_pred")
    if season < 1:
        raise InvalidInput("cannot score", [Issue("season", "must be at least 1")])
    history = np.asarray(y_train, dtype=np.float64)
    if history.ndim != 1 or not np.isfinite(history).all():
        raise InvalidInput("cannot score", [Issue("y_train", "expected finite 1-D values")])
    errors = np.abs(truth - predicted)
    out = {"mae": float(errors.mean()), "rmse": float(np.sqrt(np.mean(errors**2)))}
    if len(history) > season:
        scale = float(np.mean(np.abs(history[season:] - history[:-season])))
        if scale > 0:
            out["mase"] = out["mae"] / scale
    magnitude = np.abs(truth) + np.abs(predicted)
    ratios = np.divide(2 * errors, magnitude, out=np.zeros_like(errors), where=magnitude > 0)
    out["smape"] = float(ratios.mean())
    if (lower is None) != (upper is None):
        raise InvalidInput("cannot score", [Issue("upper", "give both lower and upper, or none")])
    if lower is not None and upper is not None:
        _, low = paired_vectors(truth, lower, "lower")
        _, high = paired_vectors(truth, upper, "upper")
        if (low > high).any():
            raise InvalidInput("cannot score", [Issue("lower", "lower > upper on some rows")])
        out["coverage"] = float(np.mean((low <= truth) & (truth <= high)))
        out["interval_width"] = float(np.mean(high - low))
    return finite(out)

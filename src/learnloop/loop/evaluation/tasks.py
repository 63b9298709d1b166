"""``metrics_for``: one entry point that picks the metric function for a task kind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from learnloop.core.errors import InvalidInput, Issue
from learnloop.loop.evaluation.forecasting import forecasting_metrics
from learnloop.loop.evaluation.metrics import classification_metrics, regression_metrics
from learnloop.loop.evaluation.ranking import ranking_metrics

TASK_METRICS: dict[str, Callable[..., dict[str, float]]] = {
    "classification": classification_metrics,
    "regression": regression_metrics,
    "ranking": ranking_metrics,
    "forecasting": forecasting_metrics,
}
"""Task kind → the function that scores it."""


def metrics_for(task: str, *args: Any, **kwargs: Any) -> dict[str, float]:
    """``TASK_METRICS[task](*args, **kwargs)``, e.g. ``metrics_for("regression", y, y_hat)``.

    Raises :class:`InvalidInput` for an unknown task (and whatever the chosen function raises).
    """
    try:
        scorer = TASK_METRICS[task]
    except KeyError:
        raise InvalidInput(
            "cannot score", [Issue("task", f"unknown {task!r}; one of {list(TASK_METRICS)}")]
        ) from None
    return scorer(*args, **kwargs)

"""Evaluation: task metrics, the paired-bootstrap regression gate and latency profiles.

* :func:`classification_metrics`, :func:`regression_metrics`, :func:`ranking_metrics`,
  :func:`forecasting_metrics` (and the dispatcher :func:`metrics_for`) score predictions
  against labelled rows and return ``{name: float}`` with only the defined metrics;
* :func:`paired_bootstrap` gives a confidence interval for the difference of one metric
  between two models scored on the same rows, and :func:`regression_gate` turns it into a
  non-inferiority verdict (:class:`GateResult`) for promoting a candidate over the champion;
* :func:`latency_profile` times a predict function: percentiles per call and throughput.

``docs/evaluation.md`` gives the formulas and the gate rule with a runnable example.
"""

from learnloop.loop.evaluation.bootstrap import paired_bootstrap
from learnloop.loop.evaluation.forecasting import forecasting_metrics
from learnloop.loop.evaluation.gate import GATE_METRICS, GateResult, regression_gate
from learnloop.loop.evaluation.kernels import RESAMPLED_METRICS, ResampledMetric
from learnloop.loop.evaluation.latency import latency_profile
from learnloop.loop.evaluation.metrics import classification_metrics, regression_metrics
from learnloop.loop.evaluation.ranking import ranking_metrics
from learnloop.loop.evaluation.tasks import TASK_METRICS, metrics_for

__all__ = [
    "GATE_METRICS",
    "RESAMPLED_METRICS",
    "TASK_METRICS",
    "GateResult",
    "ResampledMetric",
    "classification_metrics",
    "forecasting_metrics",
    "latency_profile",
    "metrics_for",
    "paired_bootstrap",
    "ranking_metrics",
    "regression_gate",
    "regression_metrics",
]

"""Data drift and concept drift: is the current window still like the reference one?

* :func:`column_drift` / :func:`drift_report` — two-sample drift per column and for the data set,
  with a verdict that needs both an effect size over its threshold and a significant test
  (:class:`DriftConfig` explains the rule and its defaults);
* :func:`drift_html` — a self-contained HTML page of a report;
* :class:`PageHinkley` / :class:`ADWIN` — streaming detectors over per-prediction errors;
* :func:`sample_psi` — the population stability index of two raw samples.
"""

from learnloop.loop.drift.columns import column_drift, column_kind
from learnloop.loop.drift.config import DriftConfig
from learnloop.loop.drift.html import drift_html
from learnloop.loop.drift.report import drift_report
from learnloop.loop.drift.stats import sample_psi
from learnloop.loop.drift.streaming import ADWIN, PageHinkley

__all__ = [
    "ADWIN",
    "DriftConfig",
    "PageHinkley",
    "column_drift",
    "column_kind",
    "drift_html",
    "drift_report",
    "sample_psi",
]

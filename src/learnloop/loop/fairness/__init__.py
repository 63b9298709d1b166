"""Group fairness of a binary classifier's predictions, per sensitive attribute.

:func:`fairness_report` groups the rows by each sensitive column (and, by default, by every
combination of two or more columns), computes per-group metrics with fairlearn's
``MetricFrame`` and the headline gaps with fairlearn's own functions:

* ``demographic_parity_difference`` — largest minus smallest selection rate;
* ``demographic_parity_ratio`` — smallest over largest selection rate;
* ``equal_opportunity_difference`` — largest minus smallest true positive rate;
* ``equalized_odds_difference`` — the larger of the true and false positive rate gaps.

Groups smaller than :attr:`FairnessConfig.min_group_size` stay in the report, flagged
``too_small``, but take no part in the headline gaps; a rate that is undefined for a group (no
actual positives for the true positive rate) is ``None`` and that group is left out of the gaps
that need it, with a note. Each headline value comes with a stratified bootstrap interval
(:mod:`.bootstrap`). :func:`check_bounds` turns a report and a set of bounds into verdicts for
a gate.

The sensitive attributes are an input of evaluation only: they are joined to the labels and
predictions when the report is computed and are never features of a model.
"""

from learnloop.loop.fairness.bootstrap import HEADLINE_METRICS
from learnloop.loop.fairness.report import FairnessConfig, check_bounds, fairness_report

__all__ = ["HEADLINE_METRICS", "FairnessConfig", "check_bounds", "fairness_report"]

"""Synthetic tabular data: a Gaussian copula generator, a fidelity report, rare-class augmentation.

**Generator** (:class:`GaussianCopulaSynthesizer`, the method of SDV's synthesizer of the same
name, implemented here on numpy/scipy). ``fit`` learns one marginal per column and one
correlation matrix:

- *numeric* columns: the empirical distribution. Sampling inverts it by linear interpolation
  between the sorted values (at most ``MAX_KNOTS`` evenly spaced order statistics are kept, so
  larger tables are not stored row by row). Values never leave the observed ``[min, max]``;
  integer columns stay integers and float columns are rounded to the decimals the data has
  (``298.1`` stays one decimal). Integer-valued columns with at most ``MAX_INT_CATEGORIES``
  distinct values (flags, 0/1 labels) are treated as categorical.
- *categorical* columns (object, string, category, bool and the small integer sets above): each
  category owns an interval of ``[0, 1]`` as wide as its frequency (most frequent first); a
  value maps to a uniform draw inside its interval ("uniform encoding"), and back by finding
  the interval a sample falls in.
- *datetime* columns: as numeric on the int64 nanosecond count, rounded to the coarsest unit
  (day, hour, minute, second, ms, µs) the data uses; the time zone is kept.

Every value is mapped to a normal score ``Φ⁻¹(F(x))`` (ties spread uniformly over their CDF
step, so discrete columns get continuous scores). The Pearson correlation of the scores
(pairwise over rows where both are present) is shrunk by a small ridge and projected to be
positive definite. ``sample`` draws from that multivariate normal and maps each score back
through its marginal. Each column's missing rate is reproduced by blanking values at random
(missingness is independent of the other columns). Columns named in ``id_columns`` are never
modelled or copied: integer ids continue after the largest real id, other ids are
``syn-000001``, ``syn-000002``… (after any ``syn-`` ids already present). Text columns with at
least ``MIN_ID_ROWS`` values, all distinct, are treated as ids without being named (unless
``column_kinds`` names them); integer ids must be named, or they are modelled as numbers.

``sample(n, conditions=…)`` fixes columns exactly by conditioning the Gaussian: a categorical
value confines its score to that category's interval (a truncated normal; with several such
conditions, 25 Gibbs sweeps over them), a numeric value pins its score; the other columns are
then drawn from the conditional normal given the fixed scores. No rejection loop, so rare
categories cost nothing extra. The copula only captures monotone pairwise dependence: rows
conditioned on a rare label look like the label's *correlations*, not its exact shape — for
that, fit a synthesizer on the label's rows alone (what :func:`augment_rare` does).

**Fidelity** (:func:`fidelity_report`): per-column shape (1 − KS statistic, or 1 − total
variation distance), pairwise Pearson correlations of numeric columns, Cramér's V between
categorical columns (reported as ``association_score``, outside ``overall``), a cross-validated
real-vs-synthetic classifier (ROC-AUC; 0.5 means indistinguishable), train-synthetic/test-real
utility, and privacy checks (exact copies, distance to the closest real record).

**Augmentation** (:func:`augment_rare`): tops every class of a target up to ``min_fraction`` of
the rows, with copula samples fitted on that class alone or SMOTE interpolation, and marks the
added rows in a bool ``_synthetic`` column.

Bad input raises :class:`SyntheticDataError`, which is both an
:class:`~learnloop.core.errors.InvalidInput` and a ``ValueError``.
"""

from learnloop.loop.synthetic.augment import SYNTHETIC_FLAG, augment_rare
from learnloop.loop.synthetic.copula import FORMAT, GaussianCopulaSynthesizer
from learnloop.loop.synthetic.marginals import (
    MAX_INT_CATEGORIES,
    MAX_KNOTS,
    MIN_ID_ROWS,
    Kind,
    SyntheticDataError,
)
from learnloop.loop.synthetic.report import fidelity_report

__all__ = [
    "FORMAT",
    "MAX_INT_CATEGORIES",
    "MAX_KNOTS",
    "MIN_ID_ROWS",
    "SYNTHETIC_FLAG",
    "GaussianCopulaSynthesizer",
    "Kind",
    "SyntheticDataError",
    "augment_rare",
    "fidelity_report",
]

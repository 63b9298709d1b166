"""k-anonymity and distinct l-diversity by full-domain generalization and suppression.

A snapshot is *k-anonymous* over its quasi-identifiers (QIs) when every combination of QI values
that occurs is shared by at least ``k`` rows (an *equivalence class*). It is *distinct
l-diverse* for a sensitive column when every class also holds at least ``l`` distinct values of
that column. :func:`anonymize` reaches both targets by coarsening each QI along its
:class:`Hierarchy` and then removing the rows that still sit in violating classes.

Hierarchies (level 0 is always the original value, rendered as text; the top level is ``"*"``):

- ``numeric``: level ``L >= 1`` is the interval of width ``base_width * 2**(L-1)`` aligned to
  multiples of that width, rendered ``"[40, 50)"``. Derived ``max_level``: one above the first
  level whose single interval covers every value.
- ``categorical``: ``groups[i]`` maps the level-``i`` value (or, failing that, the original
  value) to its level-``i+1`` group; then ``"*"``. A value with no group is an error.
- ``date``: day ``"2024-03-05"`` -> month ``"2024-03"`` -> year ``"2024"`` -> ``"*"``.
- ``prefix``: fixed-format codes such as zip codes; level ``L`` keeps ``len - L`` characters and
  pads with ``"*"`` (``"1234*"``, ``"123**"``); the top level is all stars.

Missing values (NaN/NaT/None) are a value of their own, ``"NaN"``, until the top level merges
them with everything else.

Search: the generalization *lattice* is every combination of per-QI levels. A node is feasible
when the rows in violating classes are at most ``floor(max_suppression * n)``. When the lattice
is small (nodes x rows <= 20 million) every node is evaluated and the feasible node with the
least information loss wins (ties: fewer suppressed rows, lower total level, then the levels in
QI order); this is exact. Otherwise a greedy walk starts at all zeros and repeatedly raises the
QI that removes the most violating rows per unit of added loss (the cheapest step when none
removes any), then lowers any QI it can while staying feasible and lowering the loss. Both are
deterministic.

Information loss is the normalized certainty penalty (NCP): per row and QI, ``0`` for an
original value, ``width / range`` (at most 1) for a numeric interval, ``(g - 1) / (d - 1)`` for
a non-numeric value merged with ``g`` of the column's ``d`` distinct values, and ``1`` for
``"*"``. The search minimises the mean NCP over QIs and rows counting a suppressed row as ``1``;
the report gives it with and without suppressed rows, plus the discernibility metric (sum of
squared class sizes, ``n`` per suppressed row) and the average-class-size ratio.
"""

from learnloop.loop.privacy.anonymity.hierarchy import (
    AnonymizationError,
    Hierarchy,
    HierarchyKind,
    auto_hierarchy,
)
from learnloop.loop.privacy.anonymity.result import AnonymizationResult
from learnloop.loop.privacy.anonymity.search import anonymize

__all__ = [
    "AnonymizationError",
    "AnonymizationResult",
    "Hierarchy",
    "HierarchyKind",
    "anonymize",
    "auto_hierarchy",
]

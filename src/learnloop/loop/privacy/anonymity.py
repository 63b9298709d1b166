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

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from learnloop.core.errors import InvalidInput, Issue

HierarchyKind = Literal["numeric", "categorical", "date", "prefix"]

_KINDS: tuple[str, ...] = ("numeric", "categorical", "date", "prefix")
_TOP = "*"
_MISSING = "NaN"
_EXHAUSTIVE_WORK = 20_000_000  # lattice nodes x rows evaluated exhaustively
_MAX_INTERVAL_LEVELS = 64
_RECODE_ABOVE = 1 << 40  # re-factorize combined class keys before they can overflow int64


class AnonymizationError(InvalidInput, ValueError):
    """The columns or targets given to :func:`anonymize` are unusable, or the target is unreachable.

    Both an :class:`~learnloop.core.errors.InvalidInput` (so adapters report it as bad input) and
    a :class:`ValueError`. ``issues`` names the offending column or argument.
    """

    def __init__(self, loc: str, message: str) -> None:
        super().__init__("cannot anonymize", [Issue(loc=loc, message=message)])


@dataclass(frozen=True)
class Hierarchy:
    """How one quasi-identifier generalizes; level 0 is the original value, the top is ``"*"``.

    ``base_width`` is required for (and only for) ``numeric``; ``groups`` only applies to
    ``categorical`` (keys and values are text: ``str(value)``); ``max_level`` is derived from the
    data when ``None`` (numeric, prefix) or from the kind (categorical: ``len(groups) + 1``,
    date: 3).
    """

    kind: HierarchyKind
    base_width: float | None = None
    groups: tuple[Mapping[str, str], ...] = ()
    max_level: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"Hierarchy.kind must be one of {_KINDS}, got {self.kind!r}")
        if self.kind == "numeric":
            if self.base_width is None or not math.isfinite(self.base_width):
                raise ValueError("Hierarchy.base_width is required for numeric hierarchies")
            if self.base_width <= 0:
                raise ValueError(f"Hierarchy.base_width must be > 0, got {self.base_width}")
        elif self.base_width is not None:
            raise ValueError("Hierarchy.base_width only applies to numeric hierarchies")
        object.__setattr__(self, "groups", tuple(self.groups))
        if self.groups and self.kind != "categorical":
            raise ValueError("Hierarchy.groups only applies to categorical hierarchies")
        if self.max_level is not None:
            if self.max_level < 1:
                raise ValueError(f"Hierarchy.max_level must be >= 1, got {self.max_level}")
            natural = {"categorical": len(self.groups) + 1, "date": 3}.get(self.kind)
            if natural is not None and self.max_level > natural:
                raise ValueError(
                    f"Hierarchy.max_level {self.max_level} exceeds the {natural} levels "
                    f"a {self.kind} hierarchy has"
                )


def auto_hierarchy(series: pd.Series) -> Hierarchy:
    """Pick a hierarchy from a column's dtype and values.

    Booleans -> categorical; datetimes -> date; other numbers -> numeric with ``base_width`` the
    range / 20 rounded to 1, 2 or 5 times a power of ten (at least 1 for integer columns);
    strings that are all digits of one length (>= 2) -> prefix; anything else -> categorical
    (its only generalization is ``"*"``).
    """
    if pd.api.types.is_bool_dtype(series):
        return Hierarchy("categorical")
    if pd.api.types.is_datetime64_any_dtype(series):
        return Hierarchy("date")
    if pd.api.types.is_numeric_dtype(series):
        return Hierarchy("numeric", base_width=_nice_width(series))
    values = series.dropna()
    if len(values) and all(isinstance(v, str) for v in values):
        lengths = values.str.len()
        if lengths.min() == lengths.max() >= 2 and bool(values.str.isdigit().all()):
            return Hierarchy("prefix")
    return Hierarchy("categorical")


@dataclass
class AnonymizationResult:
    """What :func:`anonymize` produced.

    ``frame`` keeps the input's index and column order: QI columns hold generalized text,
    suppressed rows are gone, every other column is untouched. ``k`` is the smallest class size
    (0 when no row is left); ``l`` the smallest number of distinct values of any sensitive column
    in any class, ``None`` without sensitive columns. ``report`` is JSON-serializable.
    """

    frame: pd.DataFrame
    levels: dict[str, int]
    suppressed: int
    k: int
    l: int | None  # noqa: E741 - the name of the privacy parameter
    report: dict[str, Any] = field(default_factory=dict)


def anonymize(
    frame: pd.DataFrame,
    quasi_identifiers: Mapping[str, Hierarchy | Literal["auto"]] | Sequence[str],
    *,
    k: int,
    l: int | None = None,  # noqa: E741 - the name of the privacy parameter
    sensitive: Sequence[str] = (),
    max_suppression: float = 0.05,
) -> AnonymizationResult:
    """Generalize and suppress ``frame`` until it is k-anonymous (and l-diverse) over its QIs.

    ``quasi_identifiers`` is a list of column names (hierarchies chosen by
    :func:`auto_hierarchy`) or a mapping of column name to a :class:`Hierarchy` or ``"auto"``.
    With ``l``, every class must hold at least ``l`` distinct values of each column in
    ``sensitive``. At most ``floor(max_suppression * len(frame))`` rows are removed.

    Raises :class:`AnonymizationError` (a ``ValueError``) naming the column or argument for
    unknown or repeated columns, a sensitive column that is also a QI, ``k < 2``, ``l`` without
    ``sensitive``, a value a hierarchy cannot generalize, or a target that cannot be met within
    ``max_suppression`` even at full generalization.
    """
    hierarchies = _resolve_quasi_identifiers(frame, quasi_identifiers)
    sensitive_columns = _check_targets(frame, hierarchies, k, l, sensitive, max_suppression)
    n = len(frame)
    ladders = [_build_ladder(name, frame[name], h) for name, h in hierarchies.items()]
    sensitive_codes = [_factorize(frame[s]) for s in sensitive_columns]
    lattice = _Lattice(ladders, sensitive_codes, k, l, math.floor(max_suppression * n + 1e-9))
    _check_reachable(lattice, n, k, l, sensitive_columns)

    size = math.prod(ladder.max_level + 1 for ladder in ladders)
    if size * max(n, 1) <= _EXHAUSTIVE_WORK:
        levels, method = lattice.exhaustive(), "exhaustive"
    else:
        levels, method = lattice.greedy(), "greedy"
    return _result(
        frame, ladders, lattice, levels, method, sensitive_columns, k, l, max_suppression
    )


# --- arguments ----------------------------------------------------------------------------------


def _resolve_quasi_identifiers(
    frame: pd.DataFrame,
    quasi_identifiers: Mapping[str, Hierarchy | Literal["auto"]] | Sequence[str],
) -> dict[str, Hierarchy]:
    if isinstance(quasi_identifiers, str):
        raise AnonymizationError("quasi_identifiers", "pass a list of column names, not a string")
    if isinstance(quasi_identifiers, Mapping):
        items = list(quasi_identifiers.items())
    else:
        items = [(name, "auto") for name in quasi_identifiers]
    if not items:
        raise AnonymizationError("quasi_identifiers", "at least one quasi-identifier is needed")
    resolved: dict[str, Hierarchy] = {}
    for name, spec in items:
        loc = f"quasi_identifiers.{name}"
        if name not in frame.columns:
            raise AnonymizationError(loc, f"column {name!r} is not in the frame")
        if name in resolved:
            raise AnonymizationError(loc, f"column {name!r} is listed twice")
        if isinstance(spec, Hierarchy):
            resolved[name] = spec
        elif spec == "auto":
            resolved[name] = auto_hierarchy(frame[name])
        else:
            raise AnonymizationError(loc, f"expected a Hierarchy or 'auto', got {spec!r}")
    return resolved


def _check_targets(
    frame: pd.DataFrame,
    hierarchies: Mapping[str, Hierarchy],
    k: int,
    l: int | None,  # noqa: E741
    sensitive: Sequence[str],
    max_suppression: float,
) -> list[str]:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 2:
        raise AnonymizationError("k", f"k must be an integer >= 2, got {k!r}")
    if isinstance(sensitive, str):
        raise AnonymizationError("sensitive", "pass a list of column names, not a string")
    columns = list(sensitive)
    if l is not None:
        if isinstance(l, bool) or not isinstance(l, int | np.integer) or l < 1:
            raise AnonymizationError("l", f"l must be an integer >= 1, got {l!r}")
        if not columns:
            raise AnonymizationError("l", "l-diversity needs at least one sensitive column")
    for name in columns:
        loc = f"sensitive.{name}"
        if name not in frame.columns:
            raise AnonymizationError(loc, f"column {name!r} is not in the frame")
        if name in hierarchies:
            raise AnonymizationError(loc, f"column {name!r} is also a quasi-identifier")
    if len(set(columns)) != len(columns):
        raise AnonymizationError("sensitive", "a sensitive column is listed twice")
    if not 0.0 <= max_suppression <= 1.0:
        raise AnonymizationError(
            "max_suppression", f"must be between 0 and 1, got {max_suppression!r}"
        )
    return columns


def _check_reachable(
    lattice: _Lattice,
    n: int,
    k: int,
    l: int | None,  # noqa: E741
    sensitive: Sequence[str],
) -> None:
    """At the top node every QI is ``"*"``: one class of all rows. Fail early if even it fails."""
    if lattice.feasible(lattice.top):
        return
    if n < k:
        raise AnonymizationError(
            "k", f"the frame has {n} rows, fewer than k={k}, even with every QI fully generalized"
        )
    for name, codes in zip(sensitive, lattice.sensitive_codes, strict=True):
        distinct = len(np.unique(codes))
        if l is not None and distinct < l:
            raise AnonymizationError(
                f"sensitive.{name}",
                f"column {name!r} has only {distinct} distinct values, fewer than l={l}",
            )
    raise AnonymizationError("k", "the target cannot be met within max_suppression")


# --- hierarchies applied to one column ----------------------------------------------------------


@dataclass
class _Ladder:
    """One QI's generalizations, stored per distinct value (``codes0`` maps rows to them)."""

    name: str
    kind: str
    max_level: int
    codes0: NDArray[Any]  # row -> distinct value index
    labels: list[NDArray[Any]]  # level -> label per distinct value
    codes: list[NDArray[Any]]  # level -> label code per distinct value
    cards: list[int]  # level -> number of labels
    ncp: list[NDArray[Any]]  # level -> NCP per distinct value
    descriptions: list[str]

    def row_labels(self, level: int) -> NDArray[Any]:
        labels: NDArray[Any] = self.labels[level][self.codes0]
        return labels


def _factorize(series: pd.Series) -> NDArray[Any]:
    codes, _ = pd.factorize(series, use_na_sentinel=False)
    out: NDArray[Any] = np.asarray(codes, dtype=np.int64)
    return out


def _build_ladder(name: str, series: pd.Series, hierarchy: Hierarchy) -> _Ladder:
    codes0, uniques = pd.factorize(series, use_na_sentinel=False)
    missing = np.asarray(pd.isna(uniques), dtype=bool)
    builders: dict[str, Callable[..., tuple[list[NDArray[Any]], list[NDArray[Any]], list[str]]]] = {
        "numeric": _numeric_levels,
        "categorical": _categorical_levels,
        "date": _date_levels,
        "prefix": _prefix_levels,
    }
    try:
        labels, ncp, descriptions = builders[hierarchy.kind](uniques, missing, hierarchy)
    except (TypeError, ValueError) as e:
        raise AnonymizationError(f"quasi_identifiers.{name}", f"column {name!r}: {e}") from e
    codes, cards = [], []
    for level_labels in labels:
        level_codes, level_uniques = pd.factorize(level_labels)
        codes.append(np.asarray(level_codes, dtype=np.int64))
        cards.append(len(level_uniques))
    return _Ladder(
        name=name,
        kind=hierarchy.kind,
        max_level=len(labels) - 1,
        codes0=np.asarray(codes0, dtype=np.int64),
        labels=labels,
        codes=codes,
        cards=cards,
        ncp=ncp,
        descriptions=descriptions,
    )


def _numeric_levels(
    uniques: Any, missing: NDArray[Any], hierarchy: Hierarchy
) -> tuple[list[NDArray[Any]], list[NDArray[Any]], list[str]]:
    numbers = pd.to_numeric(pd.Series(np.asarray(uniques, dtype=object)), errors="raise")
    values = numbers.to_numpy(dtype=float)
    finite = values[~missing]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    spread = high - low
    base = float(hierarchy.base_width or 1.0)
    top = hierarchy.max_level
    if top is None:
        top = 1
        if finite.size:
            while top < _MAX_INTERVAL_LEVELS:
                width = base * 2 ** (top - 1)
                if math.floor(low / width + 1e-9) == math.floor(high / width + 1e-9):
                    break
                top += 1
            top += 1
    zeros = np.zeros(len(values))
    labels = [_text(np.array([_number(v) for v in values], dtype=object), missing)]
    ncp = [zeros]
    descriptions = ["original values"]
    for level in range(1, top):
        width = base * 2 ** (level - 1)
        starts = np.floor(np.where(missing, 0.0, values) / width + 1e-9)
        text = np.array(
            [f"[{_number(s * width)}, {_number((s + 1) * width)})" for s in starts], dtype=object
        )
        labels.append(_text(text, missing))
        loss = min(width / spread, 1.0) if spread > 0 else 0.0
        ncp.append(np.where(missing, 0.0, loss))
        descriptions.append(f"intervals of width {_number(width)}")
    labels.append(np.full(len(values), _TOP, dtype=object))
    ncp.append(np.ones(len(values)))
    descriptions.append("suppressed (*)")
    return labels, ncp, descriptions


def _categorical_levels(
    uniques: Any, missing: NDArray[Any], hierarchy: Hierarchy
) -> tuple[list[NDArray[Any]], list[NDArray[Any]], list[str]]:
    original = _text(np.array([str(v) for v in uniques], dtype=object), missing)
    top = hierarchy.max_level or len(hierarchy.groups) + 1
    labels = [original]
    descriptions = ["original values"]
    for level in range(1, top):
        mapping = hierarchy.groups[level - 1]
        previous = labels[-1]
        grouped = []
        for i, (before, raw) in enumerate(zip(previous, original, strict=True)):
            if missing[i]:
                grouped.append(_MISSING)
                continue
            group = mapping.get(before, mapping.get(raw))
            if group is None:
                raise ValueError(f"value {before!r} has no group at level {level}")
            grouped.append(str(group))
        labels.append(np.array(grouped, dtype=object))
        descriptions.append(f"groups level {level}")
    labels.append(np.full(len(original), _TOP, dtype=object))
    descriptions.append("suppressed (*)")
    return labels, _group_ncp(labels, missing), descriptions


def _date_levels(
    uniques: Any, missing: NDArray[Any], hierarchy: Hierarchy
) -> tuple[list[NDArray[Any]], list[NDArray[Any]], list[str]]:
    stamps = pd.to_datetime(pd.Series(np.asarray(uniques, dtype=object)), errors="raise")
    day = np.array(
        [
            "" if pd.isna(t) else (t.date().isoformat() if t == t.normalize() else t.isoformat())
            for t in stamps
        ],
        dtype=object,
    )
    month = np.array(["" if pd.isna(t) else t.strftime("%Y-%m") for t in stamps], dtype=object)
    year = np.array(["" if pd.isna(t) else t.strftime("%Y") for t in stamps], dtype=object)
    top = hierarchy.max_level or 3
    labels = [_text(day, missing), _text(month, missing), _text(year, missing)][:top]
    labels.append(np.full(len(day), _TOP, dtype=object))
    descriptions = ["original values", "month", "year"][:top] + ["suppressed (*)"]
    return labels, _group_ncp(labels, missing), descriptions


def _prefix_levels(
    uniques: Any, missing: NDArray[Any], hierarchy: Hierarchy
) -> tuple[list[NDArray[Any]], list[NDArray[Any]], list[str]]:
    text = [str(v) for v in uniques]
    longest = max((len(t) for t, m in zip(text, missing, strict=True) if not m), default=1)
    top = hierarchy.max_level or max(longest, 1)
    labels = [_text(np.array(text, dtype=object), missing)]
    descriptions = ["original values"]
    for level in range(1, top):
        cut = [t[: max(len(t) - level, 0)] + _TOP * min(level, len(t)) for t in text]
        labels.append(_text(np.array(cut, dtype=object), missing))
        descriptions.append(f"last {level} characters masked")
    labels.append(np.full(len(text), _TOP * longest, dtype=object))
    descriptions.append("suppressed (*)")
    return labels, _group_ncp(labels, missing), descriptions


def _text(labels: NDArray[Any], missing: NDArray[Any]) -> NDArray[Any]:
    out = labels.astype(object)
    out[missing] = _MISSING
    return out


def _group_ncp(labels: list[NDArray[Any]], missing: NDArray[Any]) -> list[NDArray[Any]]:
    """Per level, ``(g - 1) / (d - 1)``: ``g`` of the ``d`` distinct present values share a label.

    Missing values lose nothing until the top level, where every row costs 1.
    """
    present = int((~missing).sum())
    out = []
    for level in labels[:-1]:
        if present <= 1:
            out.append(np.zeros(len(level)))
            continue
        sizes = pd.Series(level[~missing]).value_counts()
        shared = pd.Series(level).map(sizes).fillna(1).to_numpy(dtype=float)
        loss = (shared - 1.0) / (present - 1.0)
        loss[missing] = 0.0
        out.append(loss)
    out.append(np.ones(len(labels[-1])))
    return out


def _number(value: float) -> str:
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.10g}"


def _nice_width(series: pd.Series) -> float:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    spread = float(values.max() - values.min()) if values.size else 0.0
    if spread <= 0:
        return 1.0
    raw = spread / 20
    exponent = math.floor(math.log10(raw))
    fraction = raw / 10**exponent
    nice = 1 if fraction < 1.5 else 2 if fraction < 3.5 else 5 if fraction < 7.5 else 10
    width = round(nice * 10.0**exponent, 12)
    if pd.api.types.is_integer_dtype(series):
        width = max(width, 1.0)
    return width


# --- the lattice search -------------------------------------------------------------------------


@dataclass
class _Node:
    levels: tuple[int, ...]
    violations: int
    loss: float  # mean NCP, suppressed rows counted as 1
    classes: NDArray[Any]  # row -> class index
    violating: NDArray[Any]  # row -> in a violating class


class _Lattice:
    """Evaluates lattice nodes; only (violations, loss) is cached, the row arrays are not."""

    def __init__(
        self,
        ladders: Sequence[_Ladder],
        sensitive_codes: Sequence[NDArray[Any]],
        k: int,
        l: int | None,  # noqa: E741
        budget: int,
    ) -> None:
        self.ladders = list(ladders)
        self.sensitive_codes = list(sensitive_codes)
        self.k = k
        self.l = l
        self.budget = budget
        self.n = len(ladders[0].codes0)
        self.top = tuple(ladder.max_level for ladder in ladders)
        self._scores: dict[tuple[int, ...], tuple[int, float]] = {}

    @property
    def evaluated(self) -> int:
        return len(self._scores)

    def evaluate(self, levels: tuple[int, ...]) -> _Node:
        key = np.zeros(self.n, dtype=np.int64)
        span = 1
        for ladder, level in zip(self.ladders, levels, strict=True):
            if span * ladder.cards[level] > _RECODE_ABOVE:
                key, uniques = pd.factorize(key)
                span = len(uniques)
            key = key * ladder.cards[level] + ladder.codes[level][ladder.codes0]
            span *= ladder.cards[level]
        classes, uniques = pd.factorize(key)
        count = len(uniques)
        bad = np.bincount(classes, minlength=count) < self.k
        if self.l is not None:
            for codes in self.sensitive_codes:
                bad |= _distinct_per_class(classes, codes, count) < self.l
        violating = bad[classes]
        violations = int(violating.sum())
        loss = 0.0
        if self.n:
            kept = ~violating
            for ladder, level in zip(self.ladders, levels, strict=True):
                loss += float(ladder.ncp[level][ladder.codes0][kept].sum()) + violations
            loss /= self.n * len(self.ladders)
        self._scores[levels] = (violations, loss)
        return _Node(levels, violations, loss, classes, violating)

    def score(self, levels: tuple[int, ...]) -> tuple[int, float]:
        """``(rows in violating classes, loss)`` of a node."""
        cached = self._scores.get(levels)
        if cached is None:
            node = self.evaluate(levels)
            cached = (node.violations, node.loss)
        return cached

    def feasible(self, levels: tuple[int, ...]) -> bool:
        return self.score(levels)[0] <= self.budget

    def _rank(self, levels: tuple[int, ...]) -> tuple[float, int, int, tuple[int, ...]]:
        violations, loss = self.score(levels)
        return (round(loss, 12), violations, sum(levels), levels)

    def exhaustive(self) -> tuple[int, ...]:
        best: tuple[int, ...] | None = None
        for levels in itertools.product(*(range(top + 1) for top in self.top)):
            if self.feasible(levels) and (best is None or self._rank(levels) < self._rank(best)):
                best = levels
        assert best is not None  # the top node is feasible (checked before the search)
        return best

    def greedy(self) -> tuple[int, ...]:
        current = tuple(0 for _ in self.ladders)
        while not self.feasible(current):
            best: tuple[tuple[float, float], tuple[int, ...]] | None = None
            for i, top in enumerate(self.top):
                if current[i] == top:
                    continue
                levels = current[:i] + (current[i] + 1,) + current[i + 1 :]
                removed = self.score(current)[0] - self.score(levels)[0]
                added = self._generalization_loss(levels) - self._generalization_loss(current)
                score = (1.0, removed / max(added, 1e-12)) if removed > 0 else (0.0, -added)
                if best is None or score > best[0]:
                    best = (score, levels)
            assert best is not None  # below the top some QI can still rise
            current = best[1]
        improved = True
        while improved:
            improved = False
            for i in range(len(self.ladders)):
                if current[i] == 0:
                    continue
                levels = current[:i] + (current[i] - 1,) + current[i + 1 :]
                if self.feasible(levels) and self._rank(levels) < self._rank(current):
                    current, improved = levels, True
        return current

    def _generalization_loss(self, levels: tuple[int, ...]) -> float:
        if not self.n:
            return 0.0
        total = sum(
            float(ladder.ncp[level][ladder.codes0].mean())
            for ladder, level in zip(self.ladders, levels, strict=True)
        )
        return total / len(self.ladders)


def _distinct_per_class(classes: NDArray[Any], codes: NDArray[Any], count: int) -> NDArray[Any]:
    width = int(codes.max()) + 1 if codes.size else 1
    pairs = pd.unique(classes.astype(np.int64) * width + codes)
    return np.bincount(pairs // width, minlength=count)


# --- the result ---------------------------------------------------------------------------------


def _result(
    frame: pd.DataFrame,
    ladders: Sequence[_Ladder],
    lattice: _Lattice,
    levels: tuple[int, ...],
    method: str,
    sensitive: Sequence[str],
    k_target: int,
    l_target: int | None,
    max_suppression: float,
) -> AnonymizationResult:
    node = lattice.evaluate(levels)
    kept = ~node.violating
    n = len(frame)
    out = frame.copy()
    for ladder, level in zip(ladders, levels, strict=True):
        out[ladder.name] = ladder.row_labels(level)
    out = out.loc[kept]

    kept_classes = node.classes[kept]
    count = int(node.classes.max()) + 1 if n else 0
    sizes = np.bincount(kept_classes, minlength=count)
    sizes = sizes[sizes > 0]
    k_achieved = int(sizes.min()) if sizes.size else 0
    l_achieved: int | None = None
    if sensitive:
        per_column = []
        for codes in lattice.sensitive_codes:
            distinct = _distinct_per_class(kept_classes, codes[kept], count)
            present = distinct[np.bincount(kept_classes, minlength=count) > 0]
            per_column.append(int(present.min()) if present.size else 0)
        l_achieved = min(per_column)

    n_kept = int(kept.sum())
    qi_report: dict[str, Any] = {}
    ncp_kept = []
    for ladder, level in zip(ladders, levels, strict=True):
        row_ncp = ladder.ncp[level][ladder.codes0][kept]
        value = float(row_ncp.mean()) if n_kept else 0.0
        ncp_kept.append(value)
        qi_report[ladder.name] = {
            "kind": ladder.kind,
            "level": level,
            "max_level": ladder.max_level,
            "description": ladder.descriptions[level],
            "ncp": value,
        }
    report: dict[str, Any] = {
        "k_target": int(k_target),
        "l_target": None if l_target is None else int(l_target),
        "k": k_achieved,
        "l": l_achieved,
        "sensitive": list(sensitive),
        "rows_in": n,
        "rows_out": n_kept,
        "suppressed": node.violations,
        "suppressed_fraction": node.violations / n if n else 0.0,
        "max_suppression": float(max_suppression),
        "classes": int(sizes.size),
        "quasi_identifiers": qi_report,
        "information_loss": {
            "ncp": float(np.mean(ncp_kept)),
            "ncp_with_suppression": node.loss,
            "discernibility": int((sizes.astype(np.int64) ** 2).sum()) + node.violations * n,
            "average_class_size_ratio": (n_kept / sizes.size / k_target) if sizes.size else 0.0,
        },
        "search": {"method": method, "nodes_evaluated": lattice.evaluated},
    }
    return AnonymizationResult(
        frame=out,
        levels={ladder.name: level for ladder, level in zip(ladders, levels, strict=True)},
        suppressed=node.violations,
        k=k_achieved,
        l=l_achieved,
        report=report,
    )

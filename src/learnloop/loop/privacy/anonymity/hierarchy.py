"""The generalization hierarchy of one quasi-identifier, and the package's error."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from learnloop.core.errors import InvalidInput, Issue

HierarchyKind = Literal["numeric", "categorical", "date", "prefix"]

_KINDS: tuple[str, ...] = ("numeric", "categorical", "date", "prefix")


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

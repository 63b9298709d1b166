""":func:`anonymize`: check the arguments, search the lattice, build the result."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from learnloop.loop.privacy.anonymity.hierarchy import (
    AnonymizationError,
    Hierarchy,
    auto_hierarchy,
)
from learnloop.loop.privacy.anonymity.ladder import _build_ladder, _factorize
from learnloop.loop.privacy.anonymity.lattice import _Lattice
from learnloop.loop.privacy.anonymity.result import AnonymizationResult, _result

_EXHAUSTIVE_WORK = 20_000_000  # lattice nodes x rows evaluated exhaustively


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

"""Column typing and the scikit-learn preprocessor of the tabular family.

Every column of a training frame gets one verdict (:func:`classify_column`):

* a usable feature of kind ``numeric``, ``categorical`` or ``datetime``;
* ``dropped`` with a reason (id-like, constant, or named in ``drop_columns``) — reported to users;
* ``unusable`` with a problem (entirely empty, nested values, unsupported dtype) — a validation
  issue, so fitting refuses the frame.

:func:`build_preprocessor` turns the resulting :class:`FeaturePlan` into a ``ColumnTransformer``
(median imputation + missing indicators for numbers, most-frequent imputation + capped one-hot
for categories, year/month/day/day-of-week for datetimes). Its input is always
:func:`feature_matrix` of a frame, at fit and at predict time alike, and it is applied with
:func:`apply_preprocessor`. The target column is typed here too: :func:`infer_task`,
:func:`encode_target`, :func:`target_issues`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from learnloop.core.datasets import read_table as read_table  # re-exported for callers
from learnloop.core.errors import Issue, SchemaMismatch, TrainingError
from learnloop.core.limits import MAX_STRING_CHARS

FeatureKind = Literal["numeric", "categorical", "datetime"]
DATETIME_PARTS = ("year", "month", "day", "day_of_week")
CLASSIFICATION_MAX_INTEGERS = 20  # auto task: at most this many distinct integers → classes
ID_MIN_ROWS = 20  # below this many rows a column is never called id-like
ID_UNIQUE_RATIO = 0.5
ONE_HOT_MIN_FREQUENCY = 5  # rarer categories share one "infrequent" column
ONE_HOT_MAX_CATEGORIES = 32
NESTED_TYPES = (list, dict, set, tuple, np.ndarray)


@dataclass(frozen=True)
class ColumnVerdict:
    """How one column is used: ``kind`` is a feature kind, ``"dropped"`` or ``"unusable"``."""

    kind: str
    reason: str = ""


@dataclass(frozen=True)
class FeaturePlan:
    """The columns a model uses (name → kind, in frame order) and those it leaves out."""

    features: Mapping[str, FeatureKind]
    dropped: Mapping[str, str] = field(default_factory=dict)
    unusable: Mapping[str, str] = field(default_factory=dict)

    def of_kind(self, kind: FeatureKind) -> list[str]:
        return [name for name, k in self.features.items() if k == kind]


def classify_column(column: pd.Series) -> ColumnVerdict:
    """The verdict for one candidate feature column (see the module docstring)."""
    values = column.dropna()
    if values.empty:
        return ColumnVerdict("unusable", "the column is entirely empty")
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype) or ptypes.is_bool_dtype(dtype):
        return _unless_constant(values, ColumnVerdict("categorical"))
    if ptypes.is_datetime64_any_dtype(dtype):
        return _unless_constant(values, ColumnVerdict("datetime"))
    if ptypes.is_complex_dtype(dtype):
        return ColumnVerdict("unusable", f"unsupported dtype {dtype}")
    if ptypes.is_numeric_dtype(dtype):
        if ptypes.is_integer_dtype(dtype) and _is_row_id(column):
            return ColumnVerdict("dropped", "id-like: unique, monotonic integers (a row id)")
        return _unless_constant(values, ColumnVerdict("numeric"))
    if not (ptypes.is_object_dtype(dtype) or ptypes.is_string_dtype(dtype)):
        return ColumnVerdict("unusable", f"unsupported dtype {dtype}")
    inferred = ptypes.infer_dtype(values, skipna=True)
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        return _unless_constant(values, ColumnVerdict("numeric"))
    if inferred in ("datetime", "datetime64", "date"):
        return _unless_constant(values, ColumnVerdict("datetime"))
    if inferred == "boolean":
        return _unless_constant(values, ColumnVerdict("categorical"))
    if inferred == "string":
        if _looks_like_iso_dates(values):
            return _unless_constant(values, ColumnVerdict("datetime"))
        distinct = values.nunique()
        if len(values) >= ID_MIN_ROWS and distinct / len(values) > ID_UNIQUE_RATIO:
            return ColumnVerdict(
                "dropped", f"id-like: {distinct} distinct values in {len(values)} rows"
            )
        return _unless_constant(values, ColumnVerdict("categorical"))
    if inferred in ("mixed", "mixed-integer"):
        if any(isinstance(v, NESTED_TYPES) for v in values):
            return ColumnVerdict("unusable", "unsupported values: nested lists/dicts/arrays")
        return _unless_constant(values.astype(str), ColumnVerdict("categorical"))
    return ColumnVerdict("unusable", f"unsupported values of type {inferred}")


def _unless_constant(values: pd.Series, verdict: ColumnVerdict) -> ColumnVerdict:
    if values.nunique() <= 1:
        return ColumnVerdict("dropped", "constant: a single distinct value")
    return verdict


def _is_row_id(column: pd.Series) -> bool:
    if len(column) < ID_MIN_ROWS or column.hasnans or not column.is_unique:
        return False
    return bool(column.is_monotonic_increasing or column.is_monotonic_decreasing)


def _looks_like_iso_dates(values: pd.Series) -> bool:
    strings = values.astype(str)
    if not strings.str.match(r"^\d{4}-\d{2}-\d{2}").all():
        return False
    return not to_timestamps(strings).isna().any()


def plan_columns(
    frame: pd.DataFrame, target: str | None, drop_columns: Iterable[str]
) -> FeaturePlan:
    """Classify every column of ``frame`` except ``target``; ``drop_columns`` are left out."""
    to_drop = set(drop_columns)
    features: dict[str, FeatureKind] = {}
    dropped: dict[str, str] = {}
    unusable: dict[str, str] = {}
    for name in frame.columns:
        if name == target:
            continue
        if name in to_drop:
            dropped[name] = "listed in drop_columns"
            continue
        verdict = classify_column(frame[name])
        if verdict.kind == "dropped":
            dropped[name] = verdict.reason
        elif verdict.kind == "unusable":
            unusable[name] = verdict.reason
        else:
            features[name] = verdict.kind  # type: ignore[assignment]
    return FeaturePlan(features, dropped, unusable)


def feature_matrix(frame: pd.DataFrame, plan: FeaturePlan) -> np.ndarray:
    """The preprocessor's input: an object array, one column per feature in plan order.

    Numbers become floats (missing and ±inf → NaN); other values are passed as they are. Raises
    ``SchemaMismatch`` naming each feature column that is absent or, for a numeric feature,
    holds values that are not numbers.
    """
    issues = [Issue(name, "missing feature column") for name in plan.features if name not in frame]
    out = np.empty((len(frame), len(plan.features)), dtype=object)
    for j, (name, kind) in enumerate(plan.features.items()):
        if name not in frame:
            continue
        column = frame[name]
        if kind != "numeric":
            out[:, j] = column.to_numpy(dtype=object)
            continue
        try:
            numbers = pd.to_numeric(column, errors="raise")
        except (ValueError, TypeError) as e:
            issues.append(Issue(name, f"expected numbers: {e}"))
            continue
        array = np.asarray(numbers.to_numpy(dtype="float64", na_value=np.nan))
        out[:, j] = np.where(np.isinf(array), np.nan, array)
    if issues:
        raise SchemaMismatch("data does not have the model's features", issues)
    return out


def records_matrix(records: Sequence[Mapping[str, Any]], plan: FeaturePlan) -> np.ndarray:
    """:func:`feature_matrix` for items already checked by ``check_feature_value``: built
    straight from the dicts, without a DataFrame (the serving hot path)."""
    out = np.empty((len(records), len(plan.features)), dtype=object)
    for j, (name, kind) in enumerate(plan.features.items()):
        if kind == "numeric":
            out[:, j] = [np.nan if (v := r.get(name)) is None else float(v) for r in records]
        else:
            out[:, j] = [r.get(name) for r in records]
    return out


def numeric_ranges(matrix: np.ndarray, plan: FeaturePlan) -> dict[str, dict[str, float]]:
    """``{feature: {"min", "max"}}`` of the numeric features seen in ``matrix`` (NaN ignored)."""
    ranges = {}
    for j, (name, kind) in enumerate(plan.features.items()):
        values = matrix[:, j].astype("float64") if kind == "numeric" else None
        if values is not None and not np.isnan(values).all():
            ranges[name] = {"min": float(np.nanmin(values)), "max": float(np.nanmax(values))}
    return ranges


def to_timestamps(column: pd.Series) -> pd.Series:
    """Timestamps in UTC (naive values are taken as UTC); unparseable values become NaT."""
    return pd.to_datetime(column, errors="coerce", format="ISO8601", utc=True)


def datetime_parts(values: np.ndarray) -> np.ndarray:
    """Year, month, day and day of week of every column, as floats (NaN where missing)."""
    parts = []
    for j in range(values.shape[1]):
        stamps = to_timestamps(pd.Series(values[:, j], dtype=object))
        for part in DATETIME_PARTS:
            parts.append(getattr(stamps.dt, part).to_numpy(dtype="float64", na_value=np.nan))
    return np.column_stack(parts) if parts else np.empty((len(values), 0))


def datetime_part_names(_transformer: object, input_features: Iterable[str]) -> list[str]:
    return [f"{name}.{part}" for name in input_features for part in DATETIME_PARTS]


def category_strings(values: np.ndarray) -> np.ndarray:
    """Categorical values as ``str`` in an object array, missing values as NaN."""
    out = np.empty(values.shape, dtype=object)
    missing = pd.isna(values)
    for j in range(values.shape[1]):
        out[:, j] = [
            np.nan if m else str(v) for v, m in zip(values[:, j], missing[:, j], strict=True)
        ]
    return out


def build_preprocessor(plan: FeaturePlan, *, scale: bool) -> ColumnTransformer:
    """An unfitted ``ColumnTransformer`` over :func:`feature_matrix` output for ``plan``.

    ``scale`` standardises numbers and date parts (for linear models).
    """
    groups: list[tuple[str, Pipeline, list[int]]] = []
    position = {name: j for j, name in enumerate(plan.features)}
    numeric, categorical, dates = (
        [position[name] for name in plan.of_kind(kind)]
        for kind in ("numeric", "categorical", "datetime")
    )
    if numeric:
        steps: list[tuple[str, object]] = [
            (
                "impute",
                SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            )
        ]
        if scale:
            steps.append(("scale", StandardScaler()))
        groups.append(("numeric", Pipeline(steps), numeric))
    if categorical:
        encoder = OneHotEncoder(
            handle_unknown="ignore",
            min_frequency=ONE_HOT_MIN_FREQUENCY,
            max_categories=ONE_HOT_MAX_CATEGORIES,
            sparse_output=False,
        )
        as_strings = FunctionTransformer(category_strings, feature_names_out="one-to-one")
        impute = SimpleImputer(strategy="most_frequent", keep_empty_features=True)
        pipeline = Pipeline([("as_strings", as_strings), ("impute", impute), ("encode", encoder)])
        groups.append(("categorical", pipeline, categorical))
    if dates:
        parts = FunctionTransformer(datetime_parts, feature_names_out=datetime_part_names)
        steps = [
            ("parts", parts),
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        ]
        if scale:
            steps.append(("scale", StandardScaler()))
        groups.append(("datetime", Pipeline(steps), dates))
    return ColumnTransformer(groups, remainder="drop", sparse_threshold=0.0)


def apply_preprocessor(preprocessor: ColumnTransformer, matrix: np.ndarray) -> np.ndarray:
    """``preprocessor.transform(matrix)`` as float64, computed step by step.

    Runs the fitted steps of each group directly: the same transforms, without the
    ColumnTransformer's per-call overhead (milliseconds, which single-row serving feels).
    """
    parts = []
    for group, pipeline, positions in preprocessor.transformers_:
        if group == "remainder":
            continue
        part = matrix[:, positions]
        for _, step in pipeline.steps:
            part = step.transform(part)
        parts.append(np.asarray(part, dtype="float64"))
    return np.hstack(parts)


def transformed_feature_owners(preprocessor: ColumnTransformer, plan: FeaturePlan) -> list[str]:
    """For each output column of a fitted preprocessor, the original feature it comes from."""
    names = list(plan.features)
    owners: list[str] = [""] * sum(s.stop - s.start for s in preprocessor.output_indices_.values())
    for group, _, positions in preprocessor.transformers_:
        if group == "remainder":
            continue
        columns = [names[j] for j in positions]
        pipeline = preprocessor.named_transformers_[group]
        owned: list[str]
        if group == "numeric":
            indicator = pipeline.named_steps["impute"].indicator_
            owned = list(columns) + [columns[j] for j in indicator.features_]
        elif group == "categorical":
            encoder = pipeline.named_steps["encode"]
            owned = []
            for j, name in enumerate(columns):
                rare = encoder.infrequent_categories_[j]
                width = len(encoder.categories_[j]) - (0 if rare is None else len(rare) - 1)
                owned.extend([name] * width)
        else:
            owned = [name for name in columns for _ in DATETIME_PARTS]
        where = preprocessor.output_indices_[group]
        if len(owned) != where.stop - where.start:
            raise TrainingError(f"feature owners of {group!r} do not match the transformer")
        owners[where] = owned
    return owners


def check_feature_value(value: object, kind: FeatureKind) -> tuple[object, str | None]:
    """``(normalised value, None)`` for a valid item value of a ``kind`` feature, or a problem.

    ``None``/NaN means missing (imputed). Numbers may arrive as numeric strings; booleans are
    not numbers. Datetimes are ISO 8601 strings or datetime objects.
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None, None
    if isinstance(value, NESTED_TYPES):
        return None, f"expected a single value, got {type(value).__name__}"
    if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
        return None, f"a string of {len(value)} characters (at most {MAX_STRING_CHARS})"
    if kind == "numeric":
        if isinstance(value, bool | np.bool_) or not isinstance(
            value, int | float | str | np.number
        ):
            return None, f"expected a number, got {value!r}"
        try:
            number = float(value)
        except ValueError:
            return None, f"expected a number, got {value!r}"
        if not np.isfinite(number):
            return None, f"expected a finite number, got {value!r}"
        return number, None
    if kind == "datetime":
        stamp = to_timestamps(pd.Series([value], dtype=object)).iloc[0]
        if pd.isna(stamp):
            return None, f"expected an ISO 8601 date or datetime, got {value!r}"
        return stamp, None
    if not isinstance(value, str | int | float | bool | np.generic):
        return None, f"expected a string, number or boolean, got {type(value).__name__}"
    return value, None


def known_categories(preprocessor: ColumnTransformer, plan: FeaturePlan) -> dict[str, frozenset]:
    """``{categorical feature: the category strings seen in training}`` of a fitted
    preprocessor (what its one-hot encoder knows; anything else is encoded as no category)."""
    names = plan.of_kind("categorical")
    if not names or "categorical" not in preprocessor.named_transformers_:
        return {}
    encoder = preprocessor.named_transformers_["categorical"].named_steps["encode"]
    return {
        name: frozenset(str(c) for c in seen)
        for name, seen in zip(names, encoder.categories_, strict=True)
    }


def infer_task(target: pd.Series, requested: str) -> Literal["classification", "regression"]:
    """The task for ``target``: ``requested`` unless ``"auto"`` (see ``TabularParams.task``)."""
    if requested in ("classification", "regression"):
        return requested  # type: ignore[return-value]
    values = target.dropna()
    if ptypes.is_bool_dtype(values.dtype):
        return "classification"
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.isna().any():
        return "classification"
    few = numbers.nunique() <= CLASSIFICATION_MAX_INTEGERS
    return "classification" if few and bool((numbers == np.round(numbers)).all()) else "regression"


def encode_target(target: pd.Series, task: str) -> tuple[np.ndarray, tuple[Any, ...]]:
    """``(y, classes)``: class codes and their labels (sorted) or float values and ``()``."""
    if task == "regression":
        return pd.to_numeric(target).to_numpy(dtype="float64"), ()
    try:
        codes, labels = pd.factorize(target, sort=True)
    except TypeError:  # labels of mixed types: compare them as strings
        codes, labels = pd.factorize(target.astype(str), sort=True)
    classes = tuple(_plain_label(v) for v in labels)
    return np.asarray(codes, dtype="int64"), classes


def _plain_label(value: object) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, str | int | float | bool) else str(value)


def target_issues(target: pd.Series, name: str, task: str) -> list[Issue]:
    """Problems of the target column ``name`` (at most one issue)."""
    values = target.dropna()
    if values.empty:
        return [Issue(name, "the target column is entirely empty")]
    if any(isinstance(v, NESTED_TYPES) for v in values):
        return [Issue(name, "unsupported target values: nested lists/dicts/arrays")]
    missing = int(target.isna().sum())
    if missing:
        return [Issue(name, f"the target has {missing} missing values; drop or fill those rows")]
    if values.nunique() < 2:
        return [Issue(name, f"the target has a single distinct value ({values.iloc[0]!r})")]
    if infer_task(target, task) == "regression" and (
        ptypes.is_bool_dtype(values.dtype) or pd.to_numeric(values, errors="coerce").isna().any()
    ):
        return [Issue(name, f"regression needs a numeric target, got dtype {target.dtype}")]
    return []

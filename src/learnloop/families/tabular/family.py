"""The ``tabular`` family: classification and regression on a pandas DataFrame.

Columns are typed and preprocessed automatically (see ``preprocessing``); id-like and constant
columns are dropped and reported. ``fit`` holds out ``validation_fraction`` of the rows
(stratified for classification), grows the estimator in checkpointed chunks (see ``estimators``)
and reports validation metrics after each chunk.

``explain`` returns additive attributions in raw-score space — log-odds of the positive class
(binary), the predicted class's raw score (multiclass), target units (regression) — one entry
per original feature plus ``"<bias>"``, summing to that raw score. It is exact for ``lightgbm``
(``pred_contrib``) and ``linear`` (coefficient × distance from the training mean); the other
estimators raise ``NotImplementedError``.
"""

from __future__ import annotations

import difflib
import json
import pickle
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Self

import joblib
import lightgbm
import numpy as np
import pandas as pd
import sklearn
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from learnloop.core.errors import Conflict, InvalidInput, Issue, SchemaMismatch, StorageError
from learnloop.core.family import REPLAY_COLUMN, FamilyParams, FitContext, FitResult, ModelFamily
from learnloop.families.tabular.estimators import (
    EstimatorName,
    TabularModel,
    TrainingState,
    fit_model,
    predict_probabilities,
)
from learnloop.families.tabular.metrics import classification_metrics, regression_metrics
from learnloop.families.tabular.preprocessing import (
    apply_preprocessor,
    check_feature_value,
    known_categories,
    plan_columns,
    records_matrix,
    target_issues,
)
from learnloop.families.tabular.warm_start import fit_warm, replay_mask, warm_start_issues

MIN_ROWS = 10
MODEL_FILE = "model.joblib"
META_FILE = "tabular.json"
BIAS = "<bias>"
RANGE_SLACK = 0.5  # share of the training span tolerated beyond its ends


class TabularParams(FamilyParams):
    """Hyperparameters of the tabular family."""

    target: str = Field(min_length=1, description="Column to predict.")
    task: Literal["auto", "classification", "regression"] = Field(
        "auto",
        description="auto: classification for a non-numeric target or one with at most 20 "
        "distinct integer values, else regression.",
    )
    estimator: EstimatorName = Field("lightgbm", description="Which learner to fit.")
    n_estimators: int = Field(200, ge=1, description="Boosting rounds or trees (not for linear).")
    learning_rate: float = Field(0.05, gt=0, description="Shrinkage of boosting estimators.")
    max_depth: int | None = Field(None, ge=1, description="Maximum tree depth; None: unlimited.")
    num_leaves: int = Field(31, ge=2, description="Maximum leaves per tree (boosting only).")
    drop_columns: list[str] = Field(
        default_factory=list, description="Columns never used as features (e.g. leaky ones)."
    )
    validation_fraction: float = Field(
        0.2, gt=0, lt=0.9, description="Share of rows held out for validation metrics."
    )
    split_column: str | None = Field(
        None,
        description="A column of 'train'/'valid' marks (e.g. a time-based split): rows marked "
        "'valid' are the validation set instead of a random validation_fraction; never a "
        "feature.",
    )
    checkpoint_every: int = Field(
        25, ge=1, description="Rounds or trees per chunk; a checkpoint is saved after each."
    )
    class_weight: Literal["balanced"] | None = Field(
        None, description="'balanced' reweights classes inversely to their frequency."
    )

    @model_validator(mode="after")
    def _target_is_not_dropped(self) -> Self:
        if self.target in self.drop_columns:
            raise ValueError(f"target {self.target!r} is also listed in drop_columns")
        if self.split_column is not None and self.split_column == self.target:
            raise ValueError("split_column cannot be the target")
        return self


class TabularInput(BaseModel):
    """One row to predict: feature name → value (``None`` = missing). Other keys are ignored;
    those that are not columns of the training data are reported in the output's
    ``warnings``."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, bool | int | float | str | datetime | None] = Field(init=False)
    _ignored: tuple[str, ...] = PrivateAttr(default=())


class TabularOutput(BaseModel):
    """A prediction; ``probabilities`` (class label → probability) only for classification;
    ``warnings`` only when something about the input was unusual (an unknown category)."""

    prediction: bool | int | float | str
    probabilities: dict[str, float] | None = None
    warnings: list[str] | None = Field(
        None,
        description="What the model could not use as given, e.g. a category not seen in "
        "training (predicted as if the feature had none of the known categories). Absent when "
        "there is nothing to say.",
    )

    @model_serializer(mode="wrap")
    def _without_empty_warnings(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not data.get("warnings"):
            data.pop("warnings", None)
        return data


class TabularFamily(ModelFamily[TabularParams, TabularInput, TabularOutput]):
    """Classification and regression on tables, with automatic preprocessing."""

    name = "tabular"
    Params = TabularParams
    Input = TabularInput
    Output = TabularOutput
    description = "Classification and regression on tabular data (LightGBM, forests, linear)."
    supports_warm_start = True

    _model: TabularModel | None = None

    # -- schema -----------------------------------------------------------------------------

    @classmethod
    def validate_frame(
        cls, frame: pd.DataFrame, params: TabularParams | None = None
    ) -> list[Issue]:
        issues = super().validate_frame(frame, params)
        if issues:
            return issues
        duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        if duplicated:
            return [Issue(name, "the column name appears more than once") for name in duplicated]
        if len(frame) < MIN_ROWS:
            issues.append(Issue("<rows>", f"{len(frame)} rows; at least {MIN_ROWS} are needed"))
        target = params.target if params is not None else None
        drop = list(params.drop_columns) if params is not None else []
        if params is not None and params.split_column is not None:
            col = params.split_column
            if col not in frame.columns:
                issues.append(Issue(col, "split_column not found in the data"))
            else:
                marks = set(frame[col].astype(str).unique())
                if not marks <= {"train", "valid"} or marks != {"train", "valid"}:
                    issues.append(Issue(col, "needs both 'train' and 'valid' marks and no other"))
                drop.append(col)
        if params is not None:
            if params.target not in frame.columns:
                available = ", ".join(map(str, frame.columns))
                issues.append(
                    Issue(params.target, f"target column not found; available: {available}")
                )
            else:
                issues.extend(target_issues(frame[params.target], params.target, params.task))
            issues.extend(
                Issue(name, "listed in drop_columns but not in the data")
                for name in params.drop_columns
                if name not in frame.columns
            )
        plan = plan_columns(frame, target, drop)
        issues.extend(Issue(str(name), problem) for name, problem in plan.unusable.items())
        if not plan.features:
            left_out = "; ".join(f"{name}: {why}" for name, why in plan.dropped.items())
            issues.append(Issue("<features>", f"no usable feature column left ({left_out})"))
        return issues

    def validate_inputs(self, raw: Sequence[Mapping[str, Any]]) -> list[TabularInput]:
        """Check each item against the fitted features.

        Issues name ``inputs[i].<feature>``: a missing feature (with the key the client may
        have meant for it, when one is close), or a value of the wrong kind. Keys that are no
        feature are ignored: the training data's other columns (target, id-like, constant and
        dropped columns) silently, so whole rows of a snapshot can be sent; any other key is
        named in the output's ``warnings`` (see :meth:`predict`).
        Before ``fit``/``load`` only the generic schema is checked.
        """
        if self._model is None:
            return super().validate_inputs(raw)
        items: list[TabularInput] = []
        issues: list[Issue] = []
        known = self._known_columns()
        for i, item in enumerate(raw):
            if not isinstance(item, Mapping):
                issues.append(Issue(f"inputs[{i}]", "expected an object of feature values"))
                continue
            unknown = [str(key) for key in item if key not in known]
            values: dict[str, Any] = {}
            for name, kind in self._model.plan.features.items():
                if name not in item:
                    issues.append(Issue(f"inputs[{i}].{name}", _missing(name, unknown)))
                    continue
                values[name], problem = check_feature_value(item[name], kind)
                if problem:
                    issues.append(Issue(f"inputs[{i}].{name}", problem))
            if not issues:
                validated = TabularInput.model_validate(values)
                validated._ignored = tuple(unknown)
                items.append(validated)
        if issues:
            raise InvalidInput("invalid inputs", issues)
        return items

    def out_of_range(self, inputs: Sequence[TabularInput]) -> list[Issue]:
        """Numeric values more than ``RANGE_SLACK`` × the training span outside the training
        [min, max] of their feature."""
        if self._model is None:
            return []
        issues = []
        for i, item in enumerate(inputs):
            values = item.model_extra or {}
            for name, bounds in self._model.feature_ranges.items():
                value = values.get(name)
                if not isinstance(value, int | float) or isinstance(value, bool):
                    continue
                low, high = bounds["min"], bounds["max"]
                slack = RANGE_SLACK * max(high - low, abs(high) * 1e-6, 1e-12)
                if not low - slack <= value <= high + slack:
                    issues.append(
                        Issue(f"inputs[{i}].{name}", f"{value} is outside [{low}, {high}]")
                    )
        return issues

    # -- lifecycle --------------------------------------------------------------------------

    def fit(self, data: pd.DataFrame, ctx: FitContext) -> FitResult:
        self.check_frame(data)
        self._model, state = fit_model(data, self.params, ctx)
        return self._fit_result(state)

    @classmethod
    def warm_start_issues(
        cls, params: TabularParams, previous_params: Mapping[str, Any]
    ) -> list[Issue]:
        return warm_start_issues(params, previous_params)

    def fit_incremental(self, data: pd.DataFrame, ctx: FitContext, previous: Self) -> FitResult:
        """Continue ``previous`` on ``data``: same features and encoding, a grown estimator
        (see ``warm_start``); ``info`` adds ``replay_rows`` and ``rounds``."""
        replayed = replay_mask(data)
        self.check_frame(data[~replayed].drop(columns=[REPLAY_COLUMN], errors="ignore"))
        issues = warm_start_issues(self.params, previous.params.model_dump())
        if issues:
            raise InvalidInput("cannot continue the previous version", issues)
        self._model, state = fit_warm(data, self.params, ctx, previous._fitted())
        result = self._fit_result(state)
        info = {**result.info, "replay_rows": int(replayed.sum()), "rounds": self._model.rounds}
        return FitResult(metrics=result.metrics, history=result.history, info=info)

    def _fit_result(self, state: TrainingState) -> FitResult:
        model = self._fitted()
        history = [dict(h) for h in state.history]
        metrics = {k: v for k, v in history[-1].items() if k != "step"}
        info = {k: self.describe()[k] for k in ("task", "features", "dropped_columns", "classes")}
        info |= {"rows_train": model.rows_train, "rows_valid": model.rows_valid}
        return FitResult(metrics=metrics, history=history, info=info)

    def predict(self, inputs: Sequence[TabularInput]) -> list[TabularOutput]:
        """Validated items (from :meth:`validate_inputs`) → outputs, without a DataFrame.

        An output says in ``warnings`` which of its categorical values the model has not seen
        in training (they are encoded as none of the known categories) and which keys of its
        input it ignored (not a column of the training data)."""
        model = self._fitted()
        if not inputs:
            return []
        records = [item.model_extra or {} for item in inputs]
        matrix = records_matrix(records, model.plan)
        outputs = self._outputs(model, apply_preprocessor(model.preprocessor, matrix))
        categories = self._categories()
        for item, record, output in zip(inputs, records, outputs, strict=True):
            said = [
                f"{name}: unknown category {str(value)[:100]!r} (not seen in training; "
                "predicted as none of the known categories)"
                for name, seen in categories.items()
                if (value := record.get(name)) is not None and str(value) not in seen
            ]
            said += [f"{key[:256]}: not a feature of this model; ignored" for key in item._ignored]
            if said:
                output.warnings = said
        return outputs

    def predict_frame(self, frame: pd.DataFrame) -> list[TabularOutput]:
        """Predict every row of ``frame`` (extra columns are ignored)."""
        model = self._fitted()
        if len(frame) == 0:
            return []
        return self._outputs(model, model.transform(frame))

    @staticmethod
    def _outputs(model: TabularModel, x: np.ndarray) -> list[TabularOutput]:
        if model.task == "regression":
            return [TabularOutput(prediction=float(v)) for v in model.predict_values(x)]
        probabilities = predict_probabilities(model.estimator, x, len(model.classes))
        labels = [str(c) for c in model.classes]
        return [
            TabularOutput(
                prediction=model.classes[int(best)],
                probabilities=dict(zip(labels, row.tolist(), strict=True)),
            )
            for best, row in zip(probabilities.argmax(axis=1), probabilities, strict=True)
        ]

    def evaluate(self, data: pd.DataFrame) -> dict[str, float]:
        model = self._fitted()
        target = self.params.target
        if target not in data.columns:
            raise SchemaMismatch("cannot evaluate", [Issue(target, "target column missing")])
        x = model.transform(data)
        if model.task == "regression":
            truth = pd.to_numeric(data[target], errors="coerce").to_numpy(dtype="float64")
            if np.isnan(truth).any():
                raise SchemaMismatch("cannot evaluate", [Issue(target, "missing or non-numeric")])
            return regression_metrics(truth, model.predict_values(x))
        codes = pd.Index(model.classes).get_indexer(data[target])
        if (codes < 0).any():
            unseen = sorted({str(v) for v in data[target][codes < 0]})
            raise SchemaMismatch("cannot evaluate", [Issue(target, f"unknown labels: {unseen}")])
        probabilities = predict_probabilities(model.estimator, x, len(model.classes))
        return classification_metrics(codes, probabilities)

    def explain(self, inputs: Sequence[TabularInput]) -> list[dict[str, float]]:
        """Additive raw-score attributions per input (see the module docstring)."""
        model = self._fitted()
        if not inputs:
            return []
        contributions = model.contributions(model.transform(self._records_frame(inputs)))
        names = list(model.plan.features)
        return [
            {**dict(zip(names, row[:-1].tolist(), strict=True)), BIAS: float(row[-1])}
            for row in contributions
        ]

    def describe(self) -> dict[str, Any]:
        model = self._model
        if model is None:
            return {
                "fitted": False,
                "target": self.params.target,
                "estimator": self.params.estimator,
            }
        return {
            "fitted": True,
            "task": model.task,
            "target": self.params.target,
            "estimator": self.params.estimator,
            "features": dict(model.plan.features),
            "classes": list(model.classes) if model.task == "classification" else None,
            "dropped_columns": dict(model.plan.dropped),
            "rows_train": model.rows_train,
            "rows_valid": model.rows_valid,
            "rounds": model.rounds,
            "feature_ranges": model.feature_ranges,
        }

    def save(self, path: Path) -> None:
        model = self._fitted()
        joblib.dump(model, path / MODEL_FILE)
        meta = {
            "format": 1,
            "params": self.params.model_dump(mode="json"),
            "describe": self.describe(),
            "versions": {"sklearn": sklearn.__version__, "lightgbm": lightgbm.__version__},
        }
        (path / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Self:
        try:
            params = json.loads((path / META_FILE).read_text(encoding="utf-8"))["params"]
            model = joblib.load(path / MODEL_FILE)
        except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError, ImportError) as e:
            raise StorageError(f"cannot load a tabular model from {path}: {e!r}") from e
        if not isinstance(model, TabularModel):
            raise StorageError(f"{path / MODEL_FILE} does not hold a tabular model")
        family = cls(params)
        family._model = model
        return family

    # -- internals --------------------------------------------------------------------------

    def _known_columns(self) -> frozenset[str]:
        plan = self._fitted().plan
        extra = {self.params.target, self.params.split_column, *self.params.drop_columns}
        return frozenset({*plan.features, *plan.dropped, *(c for c in extra if c)})

    def _categories(self) -> dict[str, frozenset[str]]:
        """The categories each categorical feature had in training (computed once per model)."""
        model = self._fitted()
        cached = self.__dict__.get("_known_categories")
        if cached is None or cached[0] is not model:
            cached = self.__dict__["_known_categories"] = (
                model,
                known_categories(model.preprocessor, model.plan),
            )
        return cached[1]  # type: ignore[no-any-return]

    def _fitted(self) -> TabularModel:
        if self._model is None:
            raise Conflict(f"the {self.name} model is not fitted: call fit() or load() first")
        return self._model

    def _records_frame(self, inputs: Sequence[TabularInput | Mapping[str, Any]]) -> pd.DataFrame:
        records = [
            (item.model_extra or {}) if isinstance(item, BaseModel) else dict(item)
            for item in inputs
        ]
        return pd.DataFrame.from_records(records, columns=list(self._fitted().plan.features))

    # -- contract tests ---------------------------------------------------------------------

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        classify = {"target": "failure", "drop_columns": ["load"]}
        regress = {"target": "load", "drop_columns": ["failure"]}
        return [
            {**classify, "estimator": "lightgbm", "n_estimators": 20, "checkpoint_every": 5},
            {
                **classify,
                "estimator": "random_forest",
                "n_estimators": 10,
                "checkpoint_every": 5,
                "class_weight": "balanced",
            },
            {**regress, "estimator": "linear"},
            {
                **regress,
                "estimator": "hist_gradient_boosting",
                "n_estimators": 10,
                "checkpoint_every": 5,
            },
        ]

    @classmethod
    def example_data(cls, rows: int = 200, seed: int = 0) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Synthetic machine readings with two targets: ``failure`` (0/1) and ``load`` (float).

        Also holds a row id (dropped automatically), a categorical and a datetime column, and
        missing values in ``temperature`` and ``machine_type``.
        """
        rng = np.random.default_rng(seed)
        machine_type = rng.choice(["press", "lathe", "mill"], size=rows, p=[0.5, 0.3, 0.2])
        temperature = rng.normal(70.0, 8.0, rows)
        pressure = rng.normal(3.0, 0.5, rows)
        hours_run = rng.integers(0, 5000, rows)
        installed = pd.Timestamp("2019-01-01") + pd.to_timedelta(rng.integers(0, 1500, rows), "D")
        is_mill = (machine_type == "mill").astype(float)
        logit = 0.15 * (temperature - 70) + 1.5 * (pressure - 3) + is_mill + hours_run / 2500 - 1.5
        failure = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype("int64")
        is_press = (machine_type == "press").astype(float)
        load = 20 + 0.5 * temperature + 8 * pressure + 5 * is_press + rng.normal(0, 2, rows)
        temperature[rng.random(rows) < 0.05] = np.nan
        frame = pd.DataFrame(
            {
                "machine_id": np.arange(1, rows + 1),
                "machine_type": pd.Series(machine_type, dtype=object).mask(rng.random(rows) < 0.05),
                "temperature": temperature,
                "pressure": pressure,
                "hours_run": hours_run,
                "installed_on": installed,
                "failure": failure,
                "load": load,
            }
        )
        return frame, {"target": "failure", "drop_columns": ["load"]}


def _missing(name: str, unknown: Sequence[str]) -> str:
    """The issue for a missing feature, naming a sent key that looks like a misspelling of it."""
    close = difflib.get_close_matches(name, [k[:256] for k in unknown], n=1)
    return f"missing feature (sent {close[0]!r}: a misspelling?)" if close else "missing feature"

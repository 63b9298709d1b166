"""Search spaces: which family params a search varies, and over which values.

A space maps a param name to one :class:`ParamSpec`::

    {"learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
     "num_leaves": {"type": "int", "low": 8, "high": 128, "log": True},
     "estimator": {"type": "categorical", "choices": ["lightgbm", "hist_gradient_boosting"]}}

Specs are checked when a search is submitted; every problem is an
:class:`~learnloop.core.errors.Issue` whose ``loc`` is the field path
(``space.learning_rate.low``). The same space drives Optuna (:meth:`SearchSpace.suggest`,
:meth:`SearchSpace.distributions`) and Ray Tune's ``OptunaSearch``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, model_validator

from learnloop.core.errors import InvalidInput, Issue
from learnloop.core.family import issues_of

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution

Scalar = bool | int | float | str | None


class ParamSpec(BaseModel):
    """The values one param may take."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["float", "int", "categorical"] = Field(description="Kind of values.")
    low: float | None = Field(None, description="Smallest value (float and int).")
    high: float | None = Field(None, description="Largest value, included (float and int).")
    log: bool = Field(False, description="Sample on a log scale (needs low > 0).")
    choices: list[Scalar] | None = Field(None, description="The values (categorical).")

    @model_validator(mode="after")
    def _coherent(self) -> ParamSpec:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("choices: a categorical param needs at least one choice")
            return self
        if self.low is None or self.high is None:
            raise ValueError("low: numeric params need both low and high")
        if self.choices is not None:
            raise ValueError("choices: only categorical params take choices")
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError("low: int params need whole-number bounds")
        if self.low > self.high:
            raise ValueError(f"low: {self.low} is above high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"low: a log scale needs low > 0, got {self.low}")
        return self

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one this spec can produce (used to filter warm-start points)."""
        if self.type == "categorical":
            return value in (self.choices or [])
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        assert self.low is not None and self.high is not None
        return self.low <= value <= self.high and (self.type == "float" or value == int(value))


class SearchSpace(RootModel[dict[str, ParamSpec]]):
    """Param name → :class:`ParamSpec`; build with :meth:`parse` for learnloop errors."""

    @classmethod
    def parse(cls, raw: Mapping[str, Any], params_schema: type[BaseModel]) -> SearchSpace:
        """Validate ``raw``; unknown param names and bad specs raise ``InvalidInput`` with
        ``space.<param>.<field>`` locations."""
        issues: list[Issue] = []
        specs: dict[str, ParamSpec] = {}
        if not raw:
            issues.append(Issue("space", "the search space is empty"))
        for name, spec in raw.items():
            if name not in params_schema.model_fields:
                issues.append(Issue(f"space.{name}", "not a param of this family"))
                continue
            try:
                specs[name] = ParamSpec.model_validate(spec)
            except ValidationError as e:
                issues.extend(_spec_issues(name, e))
        if issues:
            raise InvalidInput("invalid search space", issues)
        return cls(specs)

    @property
    def specs(self) -> dict[str, ParamSpec]:
        return self.root

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """The trial's values for every param of the space."""
        values: dict[str, Any] = {}
        for name, spec in self.root.items():
            if spec.type == "categorical":
                values[name] = trial.suggest_categorical(name, spec.choices or [])
            elif spec.type == "int":
                low, high = int(spec.low or 0), int(spec.high or 0)
                values[name] = trial.suggest_int(name, low, high, log=spec.log)
            else:
                low_f, high_f = float(spec.low or 0), float(spec.high or 0)
                values[name] = trial.suggest_float(name, low_f, high_f, log=spec.log)
        return values

    def distributions(self) -> dict[str, BaseDistribution]:
        """The space as Optuna distributions (what Ray's ``OptunaSearch`` takes)."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        out: dict[str, BaseDistribution] = {}
        for name, spec in self.root.items():
            if spec.type == "categorical":
                out[name] = CategoricalDistribution(spec.choices or [])
            elif spec.type == "int":
                out[name] = IntDistribution(int(spec.low or 0), int(spec.high or 0), log=spec.log)
            else:
                out[name] = FloatDistribution(
                    float(spec.low or 0), float(spec.high or 0), log=spec.log
                )
        return out

    def restrict(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The entries of ``params`` this space could have produced (for warm starts)."""
        return {k: v for k, v in params.items() if k in self.root and self.root[k].contains(v)}


DEFAULT_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "tabular": {
        "learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
        "num_leaves": {"type": "int", "low": 8, "high": 128, "log": True},
        "n_estimators": {"type": "int", "low": 50, "high": 400},
        "max_depth": {"type": "int", "low": 3, "high": 12},
        "class_weight": {"type": "categorical", "choices": [None, "balanced"]},
    },
    "knowledge_tracing": {
        "learning_rate": {"type": "float", "low": 3e-4, "high": 3e-3, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.6},
        "hidden": {"type": "int", "low": 32, "high": 256, "log": True},
        "d_model": {"type": "categorical", "choices": [32, 64, 128]},
        "batch_size": {"type": "categorical", "choices": [16, 32, 64]},
    },
}
"""What a search varies when the request names no space, per family."""


def default_space(family: str) -> dict[str, dict[str, Any]]:
    """The default space of ``family`` (raw specs); ``InvalidInput`` when it has none."""
    if family not in DEFAULT_SPACES:
        raise InvalidInput(
            "no default search space", [Issue("space", f"family {family!r}: give a space")]
        )
    return {name: dict(spec) for name, spec in DEFAULT_SPACES[family].items()}


def _spec_issues(name: str, error: ValidationError) -> list[Issue]:
    """Field paths for a bad spec; cross-field errors name the field their message starts with."""
    out = []
    for issue in issues_of(error):
        message = issue.message.removeprefix("Value error, ")
        field, sep, rest = message.partition(": ")
        if issue.loc == "<root>" and sep and field in ParamSpec.model_fields:
            out.append(Issue(f"space.{name}.{field}", rest))
        else:
            out.append(Issue(f"space.{name}.{issue.loc}".removesuffix(".<root>"), message))
    return out

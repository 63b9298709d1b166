"""The model-family contract.

A *family* is a kind of model (``tabular``, ``knowledge_tracing``, …). It declares three pydantic
schemas — ``Params`` (hyperparameters), ``Input`` (one item to predict) and ``Output`` (one
prediction) — and knows how to fit, predict, evaluate, optionally explain, save and load.

Invariants every family keeps (``learnloop.testing.check_family`` verifies them):

* ``__init__`` only stores validated params; all work happens in :meth:`ModelFamily.fit` or
  :meth:`ModelFamily.load`.
* ``fit`` is reproducible from (data, params, ``params.seed``) and calls ``ctx.check_control()``
  between units of work, saving a checkpoint with ``ctx.save_checkpoint`` first, so a paused job
  resumes where it stopped (``ctx.load_checkpoint()`` returns that state on resume).
* ``predict`` is a batch call: ``len(outputs) == len(inputs)``, order kept; it is safe to call
  from several threads at once on a loaded model.
* ``save(path)`` then ``type(self).load(path)`` predicts exactly the same outputs.
* Errors are learnloop errors: bad data → :class:`~learnloop.core.errors.SchemaMismatch` with one
  issue per column; bad items → :class:`~learnloop.core.errors.InvalidInput` with field paths.

Warm start (optional). A family with ``supports_warm_start = True`` can continue a fitted
version instead of starting over: :meth:`ModelFamily.warm_start_issues` says up front why a fit
with given params cannot continue a version fitted with other params, and
:meth:`ModelFamily.fit_incremental` grows a fresh instance from the loaded previous one, which it
must leave unchanged. Its ``data`` may hold the boolean column :data:`REPLAY_COLUMN`, true on
rows replayed from the previous version's data: they are training rows only (never validation
rows, so the reported metrics are on the new data) and the column is never a feature. Families
without the capability keep the defaults, which refuse with ``InvalidInput`` naming
``warm_start_from``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from learnloop.core.errors import InvalidInput, Issue, SchemaMismatch


class FamilyParams(BaseModel):
    """Base of every family's ``Params``: frozen, strict about unknown keys, always seeded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(0, description="Seed for every random choice made while fitting.")


ParamsT = TypeVar("ParamsT", bound=FamilyParams)
InputT = TypeVar("InputT", bound=BaseModel)
OutputT = TypeVar("OutputT", bound=BaseModel)

REPLAY_COLUMN = "_learnloop_replay"
"""Marks replayed rows in the data given to :meth:`ModelFamily.fit_incremental`."""


class FitContext(Protocol):
    """What a running fit may ask of whoever runs it (a job, a notebook, a test).

    Implementations are used from the fitting thread only.
    """

    def progress(
        self, fraction: float, message: str = "", metrics: Mapping[str, float] | None = None
    ) -> None:
        """Report progress in ``[0, 1]`` with an optional message and metrics (e.g. per epoch)."""

    def save_checkpoint(self, state: object, step: int) -> None:
        """Durably store ``state`` (picklable) as the latest checkpoint at ``step``."""

    def load_checkpoint(self) -> object | None:
        """The last saved checkpoint state, or ``None`` when starting fresh."""

    def check_control(self) -> None:
        """Raise ``JobPaused``/``JobCancelled`` if a pause or cancel was requested."""


@dataclass(frozen=True)
class FitResult:
    """What ``fit`` reports: held-out metrics and the per-step history (learning curve)."""

    metrics: Mapping[str, float]
    history: Sequence[Mapping[str, float]] = ()
    info: Mapping[str, Any] = field(default_factory=dict)


class ModelFamily(ABC, Generic[ParamsT, InputT, OutputT]):
    """Base class of every model family. Subclasses set the four class attributes."""

    name: ClassVar[str]
    Params: ClassVar[type[FamilyParams]]
    Input: ClassVar[type[BaseModel]]
    Output: ClassVar[type[BaseModel]]
    description: ClassVar[str] = ""
    supports_warm_start: ClassVar[bool] = False

    def __init__(self, params: ParamsT | Mapping[str, Any] | None = None) -> None:
        self.params: ParamsT = self.parse_params(params)

    # -- schema -----------------------------------------------------------------------------

    @classmethod
    def parse_params(cls, params: BaseModel | Mapping[str, Any] | None) -> ParamsT:
        """Validate raw params into ``cls.Params``; bad keys raise ``InvalidInput``."""
        if isinstance(params, cls.Params):
            return params  # type: ignore[return-value]
        raw: Mapping[str, Any] = (
            params.model_dump() if isinstance(params, BaseModel) else (params or {})
        )
        try:
            return cls.Params.model_validate(dict(raw))  # type: ignore[return-value]
        except ValidationError as e:
            raise InvalidInput(f"invalid params for family {cls.name!r}", issues_of(e)) from e

    @classmethod
    def validate_frame(cls, frame: pd.DataFrame, params: ParamsT | None = None) -> list[Issue]:
        """Problems that stop ``frame`` from being training data for this family.

        One :class:`Issue` per offending column (``loc`` is the column name). Empty when fine.
        """
        return [] if len(frame) else [Issue("<rows>", "the data has no rows")]

    def check_frame(self, frame: pd.DataFrame) -> None:
        """Raise ``SchemaMismatch`` listing every offending column of ``frame``."""
        issues = self.validate_frame(frame, self.params)
        if issues:
            raise SchemaMismatch(f"data does not fit family {self.name!r}", issues)

    def validate_inputs(self, raw: Sequence[Mapping[str, Any]]) -> list[InputT]:
        """Parse raw items into ``Input``; errors name ``inputs[i].field``."""
        items: list[InputT] = []
        issues: list[Issue] = []
        for i, item in enumerate(raw):
            try:
                items.append(self.Input.model_validate(item))  # type: ignore[arg-type]
            except ValidationError as e:
                issues.extend(Issue(f"inputs[{i}].{x.loc}", x.message) for x in issues_of(e))
        if issues:
            raise InvalidInput("invalid inputs", issues)
        return items

    # -- lifecycle --------------------------------------------------------------------------

    @abstractmethod
    def fit(self, data: pd.DataFrame, ctx: FitContext) -> FitResult:
        """Fit on ``data`` (already validated); return held-out metrics."""

    @classmethod
    def warm_start_issues(cls, params: ParamsT, previous_params: Mapping[str, Any]) -> list[Issue]:
        """Why a fit with ``params`` cannot continue a version fitted with ``previous_params``.

        Empty when it can. Issues name request fields (``warm_start_from``, ``params.<name>``).
        """
        if cls.supports_warm_start:
            return []
        return [Issue("warm_start_from", f"family {cls.name!r} does not support warm start")]

    def fit_incremental(self, data: pd.DataFrame, ctx: FitContext, previous: Self) -> FitResult:
        """Fit by continuing ``previous`` (a loaded, fitted version) on ``data``.

        Same duties as :meth:`fit` (checkpoints, control checks, held-out metrics); see the
        module docstring for :data:`REPLAY_COLUMN`. The default refuses with ``InvalidInput``.
        """
        raise InvalidInput(
            "warm start is not supported",
            [Issue("warm_start_from", f"family {self.name!r} does not support warm start")],
        )

    @abstractmethod
    def predict(self, inputs: Sequence[InputT]) -> list[OutputT]:
        """Predict one output per input, in order."""

    @abstractmethod
    def evaluate(self, data: pd.DataFrame) -> dict[str, float]:
        """Metrics of the fitted model on labelled ``data``."""

    def out_of_range(self, inputs: Sequence[InputT]) -> list[Issue]:
        """Inputs far outside what the model was trained on (serving may fall back on them).

        One issue per offending field; the default finds none."""
        return []

    def explain(self, inputs: Sequence[InputT]) -> list[dict[str, float]]:
        """Per-input feature attributions; families without explanations raise."""
        raise NotImplementedError(f"family {self.name!r} does not explain predictions")

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write everything needed to predict into the (existing, empty) folder ``path``."""

    @classmethod
    @abstractmethod
    def load(cls, path: Path) -> Self:
        """Load a model written by :meth:`save`."""

    def describe(self) -> dict[str, Any]:
        """Facts about the fitted model shown to users (features, classes, …)."""
        return {}

    @classmethod
    @abstractmethod
    def test_params(cls) -> list[dict[str, Any]]:
        """Cheap params for contract tests (seconds, tiny data)."""

    @classmethod
    @abstractmethod
    def example_data(cls, rows: int = 200, seed: int = 0) -> tuple[pd.DataFrame, dict[str, Any]]:
        """A small real-looking training frame and the params that fit it, for checks/tests."""


def issues_of(error: ValidationError) -> list[Issue]:
    """Turn a pydantic ``ValidationError`` into field-path issues."""
    out = []
    for err in error.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        out.append(Issue(loc, err["msg"]))
    return out


AnyFamily = ModelFamily[Any, Any, Any]

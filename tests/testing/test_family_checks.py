"""``check_family`` passes the tabular family and catches families that break the contract."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pytest

from learnloop.core.catalog import FamilyCatalog
from learnloop.core.errors import Issue
from learnloop.core.family import FitContext, FitResult
from learnloop.families.tabular import TabularFamily, TabularInput, TabularOutput
from learnloop.testing import check_family


class OneParamTabular(TabularFamily):
    """The tabular family checked with its first (LightGBM) test params only, to stay quick."""

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        return TabularFamily.test_params()[:1]


class ShortPredictTabular(OneParamTabular):
    name = "short-predict"

    def predict(self, inputs: Sequence[TabularInput]) -> list[TabularOutput]:
        return super().predict(inputs)[:-1]


class StartsOverTabular(OneParamTabular):
    """Ignores its checkpoints, so a paused fit restarts from scratch."""

    name = "starts-over"

    def fit(self, data: pd.DataFrame, ctx: FitContext) -> FitResult:
        return super().fit(data, ForgetfulContext(ctx))


class NeverPausesTabular(OneParamTabular):
    """Never asks whether to stop."""

    name = "never-pauses"

    def fit(self, data: pd.DataFrame, ctx: FitContext) -> FitResult:
        return super().fit(data, DeafContext(ctx))


class PickyTabular(OneParamTabular):
    name = "picky"

    @classmethod
    def validate_frame(cls, frame: pd.DataFrame, params: Any = None) -> list[Issue]:
        return [Issue("temperature", "too warm")]


class CrashingTabular(OneParamTabular):
    name = "crashing"

    def evaluate(self, data: pd.DataFrame) -> dict[str, float]:
        raise RuntimeError("lost the labels")


class ForgetfulContext:
    """A FitContext that passes everything on but never returns a checkpoint."""

    def __init__(self, inner: FitContext) -> None:
        self.inner = inner

    def progress(
        self, fraction: float, message: str = "", metrics: Mapping[str, float] | None = None
    ) -> None:
        self.inner.progress(fraction, message, metrics)

    def save_checkpoint(self, state: object, step: int) -> None:
        self.inner.save_checkpoint(state, step)

    def load_checkpoint(self) -> object | None:
        return None

    def check_control(self) -> None:
        self.inner.check_control()


class DeafContext(ForgetfulContext):
    """A FitContext whose control requests are never heard."""

    def load_checkpoint(self) -> object | None:
        return self.inner.load_checkpoint()

    def check_control(self) -> None:
        pass


@pytest.mark.parametrize("name", FamilyCatalog().names())
def test_every_registered_family_keeps_the_contract(name: str) -> None:
    """Built-ins and families installed through the ``learnloop.families`` entry point."""
    check_family(FamilyCatalog().get(name))


def test_the_catalog_lists_the_builtin_and_entry_point_families() -> None:
    builtin = ["knowledge_tracing", "tabular"]
    assert FamilyCatalog(discover=False).names() == builtin
    # found through the installed package's ``learnloop.families`` entry point alone
    assert FamilyCatalog(targets={}).names() == builtin
    assert FamilyCatalog().get("tabular") is TabularFamily
    assert FamilyCatalog().get("knowledge_tracing").name == "knowledge_tracing"


@pytest.mark.parametrize(
    ("family", "complaint"),
    [
        (ShortPredictTabular, "predict gave 24 outputs for 25 inputs"),
        (StartsOverTabular, "the resumed fit started over"),
        (NeverPausesTabular, "fit did not raise JobPaused"),
        (PickyTabular, "validate_frame rejects example_data"),
        (CrashingTabular, "evaluate: RuntimeError: lost the labels"),
    ],
)
def test_check_family_catches_a_broken_family(family: type, complaint: str) -> None:
    with pytest.raises(AssertionError, match=complaint):
        check_family(family)

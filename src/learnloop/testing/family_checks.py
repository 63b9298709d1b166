"""``check_family``: the contract test every model family passes.

It runs each of ``family_cls.test_params()`` against ``family_cls.example_data()`` and checks the
invariants stated in :mod:`learnloop.core.family`. Failures raise ``AssertionError`` naming the
family, the params and what broke, so a pytest run of ``check_family(MyFamily)`` reads well.

Items to predict are the first rows of the example frame without the target column, passed
through ``validate_inputs``; a family whose inputs are not rows of its training frame may define
a classmethod ``example_inputs(frame) -> list[dict]`` that ``check_family`` uses instead.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ValidationError

from learnloop.core.errors import JobPaused
from learnloop.core.family import AnyFamily, FitResult
from learnloop.core.fitting import LocalFitContext

EXAMPLE_ITEMS = 25
RESUME_TOLERANCE = 1e-6
PREDICT_THREADS = 4


def check_family(family_cls: type[AnyFamily]) -> None:
    """Raise ``AssertionError`` unless ``family_cls`` keeps the ``ModelFamily`` contract."""
    frame, _ = family_cls.example_data()
    all_params = family_cls.test_params()
    _require(all_params, f"{family_cls.name}: test_params() returned no params")
    for raw in all_params:
        with tempfile.TemporaryDirectory(prefix="ll-check-") as tmp:
            FamilyCheck(family_cls, raw, frame, Path(tmp)).run()


class FamilyCheck:
    """The checks for one family and one params dict; ``folder`` is an empty scratch folder."""

    def __init__(
        self, family_cls: type[AnyFamily], raw: Mapping[str, Any], frame: pd.DataFrame, folder: Path
    ) -> None:
        self.family_cls = family_cls
        self.raw = dict(raw)
        self.frame = frame
        self.folder = folder
        self.label = f"{family_cls.name} with {self.raw}"
        self.step = "start"

    def run(self) -> None:
        """Run every check; an unexpected error becomes an ``AssertionError`` naming its step."""
        try:
            self.run_checks()
        except AssertionError:
            raise
        except Exception as e:
            raise AssertionError(f"{self.label}: {self.step}: {type(e).__name__}: {e}") from e

    def run_checks(self) -> None:
        self.step = "parse params"
        params = self.family_cls.parse_params(self.raw)
        self.step = "validate_frame"
        self.check_validation(params)
        self.step = "fit"
        model, straight = self.check_fit(params)
        self.step = "validate_inputs"
        items = model.validate_inputs(self.example_items(params))
        self.step = "predict"
        outputs = self.check_predict(model, items)
        self.step = "save/load"
        self.check_save_load(model, items, outputs)
        self.step = "evaluate"
        self.check_evaluate(model)
        self.step = "predict before fit"
        self.check_fresh_instance(params, items)
        self.step = "pause/resume"
        self.check_pause_resume(params, items, outputs, straight_checkpoints=straight)

    def check_validation(self, params: Any) -> None:
        issues = self.family_cls.validate_frame(self.frame, params)
        self.require(not issues, f"validate_frame rejects example_data: {issues}")
        target = getattr(params, "target", None)
        if isinstance(target, str) and target in self.frame.columns:
            found = self.family_cls.validate_frame(self.frame.drop(columns=[target]), params)
            self.require(
                any(issue.loc == target for issue in found),
                f"validate_frame does not report the missing target column {target!r}: {found}",
            )

    def check_fit(self, params: Any) -> tuple[AnyFamily, int]:
        """Fit once straight through; returns the model and how many checkpoints it saved."""
        model = self.family_cls(params)
        ctx = LocalFitContext(checkpoint_dir=self.folder / "straight")
        result = model.fit(self.frame, ctx)
        self.require(isinstance(result, FitResult), f"fit returned {type(result).__name__}")
        self.require_finite(result.metrics, "fit metrics")
        fractions = [event.fraction for event in ctx.events]
        self.require(fractions, "fit reported no progress")
        self.require(
            all(0.0 <= f <= 1.0 for f in fractions), f"progress outside [0, 1]: {fractions}"
        )
        self.require(fractions == sorted(fractions), f"progress went backwards: {fractions}")
        self.require(math.isclose(fractions[-1], 1.0), f"progress ended at {fractions[-1]}, not 1")
        return model, ctx.checkpoints_saved

    def check_predict(self, model: AnyFamily, items: Sequence[Any]) -> list[Any]:
        outputs = model.predict(items)
        self.require(
            len(outputs) == len(items),
            f"predict gave {len(outputs)} outputs for {len(items)} inputs",
        )
        expected = self.family_cls.Output
        for output in outputs:
            self.require(
                isinstance(output, expected),
                f"predict returned a {type(output).__name__}, not {expected.__name__}",
            )
            try:
                expected.model_validate(output.model_dump())
            except ValidationError as e:
                raise AssertionError(f"{self.label}: an output does not validate: {e}") from e
        with ThreadPoolExecutor(PREDICT_THREADS) as pool:
            runs = list(pool.map(lambda _: model.predict(items), range(PREDICT_THREADS)))
        for run in runs:
            self.require(_dumps(run) == _dumps(outputs), "concurrent predict calls disagree")
        return outputs

    def check_save_load(self, model: AnyFamily, items: Sequence[Any], outputs: list[Any]) -> None:
        saved = self.folder / "saved"
        saved.mkdir()
        model.save(saved)
        loaded = self.family_cls.load(saved)
        self.require(
            _dumps(loaded.predict(items)) == _dumps(outputs),
            "predictions after save() + load() differ from before",
        )

    def check_evaluate(self, model: AnyFamily) -> None:
        self.require_finite(model.evaluate(self.frame), "evaluate metrics")

    def check_fresh_instance(self, params: Any, items: Sequence[Any]) -> None:
        fresh = self.family_cls(params)
        try:
            fresh.predict(items)
        except Exception:  # any error will do: there is nothing fitted to predict with
            return
        raise AssertionError(f"{self.label}: predict on an unfitted instance did not raise")

    def check_pause_resume(
        self, params: Any, items: Sequence[Any], outputs: list[Any], *, straight_checkpoints: int
    ) -> None:
        """Pause after the first checkpoint, then resume on the same folder.

        The resumed fit must report progress above 0 first and, when a straight fit saves two
        checkpoints or more, save fewer than that (it did not start over) and predict like it.
        """
        folder = self.folder / "paused"
        paused = LocalFitContext(checkpoint_dir=folder, stop_after_checkpoints=1)
        try:
            self.family_cls(params).fit(self.frame, paused)
        except JobPaused:
            pass
        else:
            raise AssertionError(
                f"{self.label}: fit did not raise JobPaused when asked to pause after a checkpoint"
            )
        resumed_ctx = LocalFitContext(checkpoint_dir=folder)
        resumed = self.family_cls(params)
        resumed.fit(self.frame, resumed_ctx)
        self.require(resumed_ctx.events, "the resumed fit reported no progress")
        first = resumed_ctx.events[0].fraction
        self.require(first > 0, f"the resumed fit started over (first progress {first})")
        if straight_checkpoints >= 2:
            redone = resumed_ctx.checkpoints_saved
            self.require(
                redone < straight_checkpoints,
                f"the resumed fit started over ({redone} checkpoints, as many as a straight fit)",
            )
            difference = _difference(_dumps(resumed.predict(items)), _dumps(outputs))
            self.require(
                difference is None,
                f"paused + resumed fit predicts differently from a straight fit: {difference}",
            )

    def example_items(self, params: Any) -> list[dict[str, Any]]:
        custom: Callable[[pd.DataFrame], list[dict[str, Any]]] | None = getattr(
            self.family_cls, "example_inputs", None
        )
        if custom is not None:
            return custom(self.frame)
        target = getattr(params, "target", None)
        rows = self.frame.drop(columns=[target]) if target in self.frame.columns else self.frame
        records = rows.head(EXAMPLE_ITEMS).to_dict("records")
        return [{str(k): None if _missing(v) else v for k, v in r.items()} for r in records]

    def require(self, condition: object, message: str) -> None:
        _require(condition, f"{self.label}: {message}")

    def require_finite(self, metrics: Mapping[str, Any], what: str) -> None:
        self.require(metrics, f"{what} are empty")
        for name, value in metrics.items():
            self.require(
                isinstance(value, float | int) and not isinstance(value, bool),
                f"{what}: {name}={value!r} is not a float",
            )
            self.require(math.isfinite(value), f"{what}: {name}={value!r} is not finite")


def _require(condition: object, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _missing(value: object) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _dumps(outputs: Sequence[BaseModel]) -> list[dict[str, Any]]:
    return [output.model_dump() for output in outputs]


def _difference(left: object, right: object, path: str = "outputs") -> str | None:
    """Where ``left`` and ``right`` differ (floats within ``RESUME_TOLERANCE``), or ``None``."""
    if isinstance(left, float | int) and isinstance(right, float | int):
        if isinstance(left, bool) or isinstance(right, bool):
            return None if left == right else f"{path}: {left!r} != {right!r}"
        close = math.isclose(left, right, rel_tol=RESUME_TOLERANCE, abs_tol=RESUME_TOLERANCE)
        return None if close else f"{path}: {left!r} != {right!r}"
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        if set(left) != set(right):
            return f"{path}: keys {sorted(map(str, left))} != {sorted(map(str, right))}"
        for key in left:
            found = _difference(left[key], right[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        if len(left) != len(right):
            return f"{path}: length {len(left)} != {len(right)}"
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            found = _difference(a, b, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if left == right else f"{path}: {left!r} != {right!r}"

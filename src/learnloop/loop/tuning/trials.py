"""What one trial of a search needs: the metric, a fit context, MLflow child runs, the best
artifact so far.

A trial fits the family with a :class:`TrialFitContext`: each ``progress`` call that carries the
search metric is one step — reported to Optuna (``trial.report``), logged to the trial's MLflow
run, and checked against the pruner (``trial.should_prune()`` raises ``optuna.TrialPruned``).
Checkpoints stay in memory (a trial is short and restarts from scratch), and ``check_control``
asks the job, so pause and cancel stop a search mid-trial.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from learnloop.core.errors import InvalidInput, Issue
from learnloop.core.family import AnyFamily, FamilyParams
from learnloop.core.registry import ModelRegistry, TrainingRun

if TYPE_CHECKING:
    import optuna

Direction = Literal["maximize", "minimize"]
MINIMIZED = frozenset({"rmse", "mae", "mse", "log_loss", "loss", "error", "brier"})
"""Metrics where lower is better; every other metric is maximized unless the request says."""


def default_metric(family: str, frame: pd.DataFrame, params: FamilyParams) -> str:
    """The family's validation metric for this data (e.g. ``roc_auc`` for a classification
    table, ``rmse`` for a regression one); ``InvalidInput`` for families without one."""
    if family == "tabular":
        from learnloop.families.tabular.metrics import PRIMARY_METRIC
        from learnloop.families.tabular.preprocessing import infer_task

        target = params.target  # type: ignore[attr-defined]
        return PRIMARY_METRIC[infer_task(frame[target], params.task)]  # type: ignore[attr-defined]
    if family == "knowledge_tracing":
        return "auc"
    raise InvalidInput("no default metric", [Issue("metric", f"family {family!r}: name one")])


def infer_direction(metric: str) -> Direction:
    """``minimize`` for error-like metrics (:data:`MINIMIZED`), else ``maximize``."""
    return "minimize" if metric.lower() in MINIMIZED else "maximize"


class TrialFitContext:
    """The :class:`~learnloop.core.family.FitContext` of one Optuna trial (see module doc)."""

    def __init__(
        self,
        trial: optuna.Trial | None,
        metric: str,
        check_control: Callable[[], None],
        on_step: Callable[[Mapping[str, float], int], None] | None = None,
    ) -> None:
        self.trial = trial
        self.metric = metric
        self.check_control = check_control  # type: ignore[method-assign]
        self.on_step = on_step
        self.step = 0
        self._checkpoint: object | None = None
        self._checkpoint_step: int | None = None

    def progress(
        self, fraction: float, message: str = "", metrics: Mapping[str, float] | None = None
    ) -> None:
        if not metrics:
            return
        self.step = self._checkpoint_step if self._checkpoint_step is not None else self.step + 1
        if self.on_step is not None:
            self.on_step(metrics, self.step)
        if self.trial is not None and self.metric in metrics:
            import optuna

            self.trial.report(float(metrics[self.metric]), self.step)
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {self.step}")

    def save_checkpoint(self, state: object, step: int) -> None:
        self._checkpoint, self._checkpoint_step = state, step

    def load_checkpoint(self) -> object | None:
        return None  # a trial always starts from scratch

    def check_control(self) -> None:  # replaced per instance in __init__
        """Raise ``JobPaused``/``JobCancelled`` when the job was asked to stop."""


class TrialTracker:
    """MLflow child runs and job progress for the trials of one job.

    Each trial gets a run nested under the job's parent run (``mlflow.parentRunId``). Run
    starts, ends and metric writes are serialized with one lock (the embedded SQLite tracking
    store takes one writer at a time); ``finished`` reports job progress. Thread-safe."""

    def __init__(
        self,
        tracking: ModelRegistry,
        parent_run_id: str,
        tags: Mapping[str, str],
        progress: Callable[[int, str], None],
        done: int = 0,
    ) -> None:
        self.tracking = tracking
        self.parent_run_id = parent_run_id
        self.tags = dict(tags)
        self.progress = progress
        self.done = done
        self.lock = threading.Lock()

    @contextmanager
    def trial_run(self, name: str, params: Mapping[str, Any]) -> Iterator[TrainingRun]:
        """A child run for one trial, params logged; it ends FINISHED, or FAILED on error."""
        tags = {**self.tags, "mlflow.parentRunId": self.parent_run_id}
        with self.lock:
            manager = self.tracking.run(name, tags)
            run = manager.__enter__()
            run.log_params(jsonable(params))
        try:
            yield run
        except BaseException as e:
            with self.lock:
                manager.__exit__(type(e), e, e.__traceback__)
            raise
        with self.lock:
            manager.__exit__(None, None, None)

    def log(self, run: TrainingRun, metrics: Mapping[str, float], step: int | None = None):
        with self.lock:
            run.log_metrics(metrics, step)

    def tag(self, run: TrainingRun, tags: Mapping[str, str]) -> None:
        with self.lock:
            run.set_tags(tags)

    def finished(self, message: str) -> None:
        with self.lock:
            self.done += 1
            done = self.done
        self.progress(done, message)


@dataclass
class BestArtifact:
    """The best fitted model of this job so far, saved once so it need not be refitted."""

    direction: Direction
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ll-tune-")))
    number: int | None = None
    value: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def offer(self, number: int, value: float, model: AnyFamily, metrics: Mapping[str, float]):
        """Keep ``model`` when ``value`` beats the kept one."""
        with self._lock:
            if self.value is not None and not self._better(value, self.value):
                return
            target = self.root / f"trial-{number}"
            target.mkdir(parents=True)
            model.save(target)
            if self.number is not None:
                shutil.rmtree(self.root / f"trial-{self.number}", ignore_errors=True)
            self.number, self.value, self.metrics = number, value, dict(metrics)

    def path(self, number: int) -> Path | None:
        """The saved artifact of trial ``number``, if it is the kept one."""
        return self.root / f"trial-{number}" if number == self.number else None

    def discard(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _better(self, value: float, than: float) -> bool:
        return value > than if self.direction == "maximize" else value < than


def trial_value(metrics: Mapping[str, float], metric: str) -> float:
    """The search metric out of a fit's metrics; a fit that does not report it is an error."""
    from learnloop.core.errors import TrainingError

    if metric not in metrics:
        known = ", ".join(sorted(metrics))
        raise TrainingError(f"the fit did not report metric {metric!r} (it reported: {known})")
    return float(metrics[metric])


def jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    """Params as plain JSON values (MLflow params and job results)."""
    return {
        k: v if isinstance(v, str | int | float | bool | type(None)) else str(v)
        for k, v in params.items()
    }

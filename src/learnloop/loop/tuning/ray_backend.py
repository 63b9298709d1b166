"""Running a search on Ray Tune: same space, same metric, same Optuna study.

``ray.tune.Tuner`` samples with ``OptunaSearch`` bound to the study in learnloop's database
(``storage`` + ``study_name``), so Ray trials land in the same study as in-process ones and
warm-start points enqueued there are asked first. Each Ray trial fits the family in a Ray worker
and reports the metric after every chunk; ``ASHAScheduler`` stops the weak ones early (they are
counted as pruned; in the Optuna study they appear COMPLETE with their last value, which is how
``OptunaSearch`` records them). The driver — the job's thread — logs one MLflow child run per
trial from the reported results, reports job progress, and stops all trials when the job is
paused or cancelled.

``address="local"`` starts a Ray in this process (2 CPUs at least) and shuts it down afterwards;
any other address is passed to ``ray.init`` (``auto``, ``ray://host:10001``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from learnloop.core.errors import JobInterrupted, MissingDependency
from learnloop.core.family import AnyFamily
from learnloop.loop.tuning.plan import SearchPlan, SearchRun
from learnloop.loop.tuning.trials import TrialFitContext

if TYPE_CHECKING:
    from learnloop.loop.tuning.studies import StudyBook

FINAL = "learnloop_final"
_LIVE: dict[str, SearchRun] = {}
"""Searches running in this process, by job id. Ray pickles its stopper and callbacks with the
experiment state, so they hold the job id and look the (unpicklable) search up here."""


def run_ray_search(plan: SearchPlan, studies: StudyBook, address: str, run: SearchRun) -> int:
    """Run ``plan.n_trials`` trials on Ray Tune; returns how many were stopped early."""
    try:
        import ray
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.search.optuna import OptunaSearch
    except ImportError as e:
        raise MissingDependency("ray[tune]", "ray") from e
    if plan.n_trials == 0:
        return 0
    started = not ray.is_initialized()
    if started:
        if address == "local":
            cpus = max(2, min(plan.workers, os.cpu_count() or 2))
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    _LIVE[plan.job_id] = run
    try:
        mode = "max" if plan.direction == "maximize" else "min"
        searcher = OptunaSearch(
            space=plan.space.distributions(),
            metric=plan.metric,
            mode=mode,
            storage=studies.storage,
            study_name=plan.study_name,
            seed=plan.seed,
        )
        trainable = tune.with_parameters(
            _train_trial,
            family_cls=plan.family_cls,
            frame=plan.frame,
            base=plan.base,
            metric=plan.metric,
        )
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=ASHAScheduler(
                    metric=plan.metric,
                    mode=mode,
                    max_t=10_000,
                    grace_period=2,
                    reduction_factor=2,
                ),
                num_samples=plan.n_trials,
                max_concurrent_trials=plan.workers,
                time_budget_s=plan.timeout_s,
            ),
            run_config=tune.RunConfig(
                name=f"{plan.study_name}-{plan.job_id}",
                storage_path=str((run.workdir / "ray").resolve()),
                stop=_job_stopper(plan.job_id),
                callbacks=[_progress_callback(plan.job_id, plan.metric)],
                verbose=0,
            ),
        )
        results = tuner.fit()
        pruned = 0
        for i, result in enumerate(results):
            pruned += _log_trial(plan, run, i, result)
        return pruned
    finally:
        _LIVE.pop(plan.job_id, None)
        if started:
            ray.shutdown()


def _train_trial(
    config: dict[str, Any],
    *,
    family_cls: type[AnyFamily],
    frame: pd.DataFrame,
    base: dict[str, Any],
    metric: str,
) -> None:
    """One Ray trial: fit with the trial's values, reporting every chunk's metrics."""
    from ray import tune

    def report(metrics: Mapping[str, float], step: int) -> None:
        tune.report({**metrics, "step": step})

    model = family_cls({**base, **config})
    ctx = TrialFitContext(None, metric, lambda: None, report)
    fit = model.fit(frame, ctx)
    tune.report({**fit.metrics, "step": ctx.step, FINAL: 1.0})


def _log_trial(plan: SearchPlan, run: SearchRun, index: int, result: Any) -> int:
    """An MLflow child run for one finished Ray trial; 1 when it was stopped early."""
    params = plan.trial_params(dict(result.config or {}))
    history = result.metrics_dataframe
    final = result.metrics or {}
    stopped = result.error is None and not final.get(FINAL)
    with run.tracker.trial_run(f"{plan.study_name}-ray-{index}", params) as mlflow_run:
        if history is not None:
            for row in history.to_dict("records"):
                values = {k: float(v) for k, v in row.items() if _metric_like(k, v)}
                run.tracker.log(mlflow_run, values, int(row.get("step") or 0))
        state = "FAIL" if result.error is not None else "PRUNED" if stopped else "COMPLETE"
        run.tracker.tag(mlflow_run, {"learnloop.trial_state": state})
        if plan.metric in final and state == "COMPLETE":
            run.tracker.log(mlflow_run, {"value": float(final[plan.metric])})
    return int(stopped)


def _metric_like(key: str, value: Any) -> bool:
    skip = {"step", FINAL, "training_iteration", "timestamp", "time_this_iter_s", "pid"}
    return (
        key not in skip
        and "/" not in key
        and not key.startswith("time_")
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _live(job_id: str) -> SearchRun | None:
    """The running search of ``job_id`` (a module-level function: pickled by reference)."""
    return _LIVE.get(job_id)


def _finished(job_id: str, message: str) -> None:
    run = _live(job_id)
    if run is not None:
        run.tracker.finished(message)


def _job_stopper(job_id: str) -> Any:
    """A Ray ``Stopper`` that stops every trial once the job is asked to pause or cancel."""
    from ray.tune import Stopper

    class JobStopper(Stopper):  # type: ignore[misc]
        def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
            return self.stop_all()

        def stop_all(self) -> bool:
            run = _live(job_id)
            try:
                if run is not None:
                    run.check_control()
            except JobInterrupted:
                return True
            return False

    return JobStopper()


def _progress_callback(job_id: str, metric: str) -> Any:
    """Job progress from the driver: one step per finished Ray trial."""
    from ray.tune import Callback

    class Progress(Callback):  # type: ignore[misc]
        def on_trial_complete(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
            value = (trial.last_result or {}).get(metric)
            shown = f" {metric}={value:.4f}" if isinstance(value, float) else ""
            _finished(job_id, f"ray trial {trial.trial_id}{shown}")

        def on_trial_error(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
            _finished(job_id, f"ray trial {trial.trial_id} failed")

    return Progress()

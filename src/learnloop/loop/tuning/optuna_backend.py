"""Running a search in the job's process with Optuna: ``workers`` threads share one study.

Each trial suggests values from the space, fits the family with a
:class:`~learnloop.loop.tuning.trials.TrialFitContext` (intermediate values → ``MedianPruner``),
logs an MLflow child run and offers its model to the job's :class:`BestArtifact`. Trials whose
fit fails on bad data or params are marked FAIL and the search goes on; pause and cancel
(raised by the job's ``check_control``) stop it and propagate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from learnloop.core.errors import InvalidInput, TrainingError
from learnloop.loop.tuning.plan import JOB_ATTR, SearchPlan, SearchRun
from learnloop.loop.tuning.trials import TrialFitContext, trial_value

if TYPE_CHECKING:
    import optuna

PRUNER_STARTUP_TRIALS = 3
"""Trials that run to the end before the median pruner may stop others."""


def make_pruner() -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=1)


def run_optuna_search(plan: SearchPlan, study: optuna.Study, run: SearchRun) -> None:
    """Run ``plan.n_trials`` more trials of ``study`` (fewer when ``plan.timeout_s`` passes)."""
    import optuna

    def objective(trial: optuna.Trial) -> float:
        run.check_control()
        trial.set_user_attr(JOB_ATTR, plan.job_id)
        params = plan.trial_params(plan.space.suggest(trial))
        model = plan.family_cls(params)
        name = f"{plan.study_name}-trial-{trial.number}"
        with run.tracker.trial_run(name, params) as mlflow_run:
            trial.set_user_attr("mlflow_run_id", mlflow_run.run_id)

            def on_step(metrics: Any, step: int) -> None:
                run.tracker.log(mlflow_run, metrics, step)

            ctx = TrialFitContext(trial, plan.metric, run.check_control, on_step)
            try:
                fit = model.fit(plan.frame, ctx)
            except optuna.TrialPruned:
                run.tracker.tag(mlflow_run, {"learnloop.trial_state": "PRUNED"})
                pruned = True
            else:
                pruned = False
                value = trial_value(fit.metrics, plan.metric)
                run.tracker.log(mlflow_run, {f"final_{k}": v for k, v in fit.metrics.items()})
                run.tracker.log(mlflow_run, {"value": value})
                run.tracker.tag(mlflow_run, {"learnloop.trial_state": "COMPLETE"})
        if pruned:
            raise optuna.TrialPruned(f"pruned at step {ctx.step}")
        trial.set_user_attr("metrics", {k: float(v) for k, v in fit.metrics.items()})
        run.best.offer(trial.number, value, model, fit.metrics)
        return value

    def on_trial_end(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        state = trial.state.name.lower()
        shown = f" {plan.metric}={trial.value:.4f}" if trial.value is not None else ""
        run.tracker.finished(f"trial {trial.number} {state}{shown}")

    study.optimize(
        objective,
        n_trials=plan.n_trials,
        timeout=plan.timeout_s,
        n_jobs=plan.workers,
        catch=(TrainingError, InvalidInput),
        callbacks=[on_trial_end],
        gc_after_trial=False,
        show_progress_bar=False,
    )

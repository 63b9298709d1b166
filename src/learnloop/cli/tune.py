"""``learnloop tune``: a hyperparameter search as a job, followed with a progress bar."""

from __future__ import annotations

from pathlib import Path

import typer

from learnloop.cli.common import (
    console,
    emit_json,
    json_object,
    opened,
    out,
    parse_params,
    say_error,
    validated,
)
from learnloop.cli.jobs import ACTOR, ensure_worker, follow_job
from learnloop.core.records import JobStatus
from learnloop.loop.tuning import TuneRequest


def tune(
    family: str = typer.Argument(..., help="Family, e.g. tabular."),
    model: str = typer.Option(..., "--model", "-m", help="Registered model name."),
    data: Path | None = typer.Option(
        None, "--data", "-d", exists=True, dir_okay=False, help="File to import and tune on."
    ),
    dataset_id: str | None = typer.Option(None, help="An imported dataset instead of --data."),
    target: str | None = typer.Option(None, help="Target column."),
    param: list[str] | None = typer.Option(None, "--param", "-p", help="Fixed param key=value."),
    space: str | None = typer.Option(None, help="Search space as JSON (default: the family's)."),
    trials: int = typer.Option(20, "--trials", "-n", help="Trials to run."),
    metric: str | None = typer.Option(None, help="Metric to optimize (default: the family's)."),
    direction: str | None = typer.Option(None, help="maximize or minimize (default: inferred)."),
    study: str | None = typer.Option(None, help="Study name (default: <model>-<family>)."),
    workers: int = typer.Option(1, help="Trials run at once by the job."),
    timeout: float | None = typer.Option(None, help="Stop starting trials after this many s."),
    seed: int = typer.Option(0, help="Sampler seed."),
    warm_start: bool = typer.Option(True, help="Start from the model's earlier best params."),
    register: bool = typer.Option(True, help="Register the best trial as a version."),
    alias: str | None = typer.Option("challenger", help="Alias for the registered version."),
    follow: bool = typer.Option(True, help="Follow the job with a progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print the job result as JSON."),
) -> None:
    """Search hyperparameters (Optuna; Ray Tune when LEARNLOOP_RAY__ADDRESS is set)."""
    if (data is None) == (dataset_id is None):
        say_error("give exactly one of --data and --dataset-id")
        raise typer.Exit(2)
    params = parse_params(param)
    if target:
        params["target"] = target
    raw_space = json_object(space, "--space") if space else None
    with opened() as c:
        if data is not None:
            record = c.datasets.import_file(data, family=family, params=params, actor=ACTOR)
            console.print(f"dataset {record.id} ({record.rows} rows)")
            dataset_id = record.id
        assert dataset_id is not None
        request = c.tuning.validate(
            validated(
                TuneRequest,
                {
                    "family": family,
                    "model": model,
                    "dataset_id": dataset_id,
                    "params": params,
                    "space": raw_space,
                    "n_trials": trials,
                    "metric": metric,
                    "direction": direction,
                    "study_name": study,
                    "workers": workers,
                    "timeout_s": timeout,
                    "seed": seed,
                    "warm_start": warm_start,
                    "register_best": register,
                    "alias": alias,
                },
                {
                    "family": "family",
                    "params": "--param",
                    "n_trials": "--trials",
                    "study_name": "--study",
                    "timeout_s": "--timeout",
                    "register_best": "--register",
                },
            )
        )
        job = c.jobs.submit("tune", request.model_dump(), actor=ACTOR)
        console.print(f"job {job.id} queued (study {request.study})")
        if not follow:
            out.print(job.id)
            return
        ensure_worker(c)
        job = follow_job(c, job.id)
    if job.status is not JobStatus.SUCCEEDED:
        console.print(f"[bold red]job {job.status.value}[/]: {job.error or job.message}")
        raise typer.Exit(1)
    result = dict(job.result or {})
    if as_json:
        emit_json(result)
        return
    best = ", ".join(f"{k}={v}" for k, v in dict(result.get("best_params") or {}).items())
    out.print(
        f"study [bold]{result['study']}[/]: best {result['metric']}="
        f"[bold]{result['best_value']:.4f}[/] (trial {result['best_trial']}, "
        f"{result['trials']} trials, {result['pruned']} pruned, {result['backend']})"
    )
    out.print(f"best params: {best}")
    if result.get("version"):
        out.print(f"registered {model} version {result['version']} as @{result['alias']}")

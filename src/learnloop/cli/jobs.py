"""``learnloop dataset …``, ``learnloop train``, ``learnloop jobs …``."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from learnloop.cli.common import (
    console,
    emit_json,
    opened,
    out,
    parse_params,
    usage_error,
    validated,
)
from learnloop.container import Container
from learnloop.core.auth import LOCAL_OPERATOR
from learnloop.core.jobs import PRIORITIES
from learnloop.core.records import JobRecord, JobStatus
from learnloop.loop.training import TrainRequest

dataset_app = typer.Typer(help="Import, list and show dataset snapshots.", no_args_is_help=True)
jobs_app = typer.Typer(help="List, inspect and steer jobs.", no_args_is_help=True)
ACTOR = LOCAL_OPERATOR.name


@dataset_app.command("import")
def dataset_import(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="CSV, TSV or Parquet file (.gz allowed)."
    ),
    family: str = typer.Option(..., "--family", "-f", help="Family whose schema it must fit."),
    target: str | None = typer.Option(None, help="Target column (families that have one)."),
    name: str | None = typer.Option(None, help="Dataset name (default: file name)."),
    param: list[str] | None = typer.Option(None, "--param", "-p", help="Family param key=value."),
) -> None:
    """Validate FILE against the family and store an immutable snapshot."""
    params = parse_params(param)
    if target:
        params["target"] = target
    with opened() as c:
        record = c.datasets.import_file(file, family=family, params=params, name=name, actor=ACTOR)
    out.print(f"dataset [bold]{record.id}[/] ({record.rows} rows, {len(record.schema)} columns)")


@dataset_app.command("list")
def dataset_list(family: str | None = typer.Option(None, help="Only this family.")) -> None:
    with opened() as c:
        records = c.datasets.list(family)
    table = Table("id", "family", "name", "rows", "created")
    for r in records:
        table.add_row(r.id, r.family, r.name, str(r.rows), f"{r.created_at:%Y-%m-%d %H:%M:%S}")
    out.print(table)


@dataset_app.command("show")
def dataset_show(dataset_id: str) -> None:
    with opened() as c:
        emit_json(dict(c.datasets.get(dataset_id).manifest))


def train(
    family: str = typer.Argument(..., help="Family, e.g. tabular."),
    data: Path = typer.Option(
        ..., "--data", "-d", exists=True, dir_okay=False, help="Training file (CSV/TSV/Parquet)."
    ),
    model: str = typer.Option(..., "--model", "-m", help="Registered model name."),
    target: str | None = typer.Option(None, help="Target column."),
    param: list[str] | None = typer.Option(None, "--param", "-p", help="Family param key=value."),
    alias: str | None = typer.Option(None, help="Alias to point at the new version."),
    priority: str = typer.Option("normal", help="high, normal or low."),
    follow: bool = typer.Option(True, help="Follow the job with a progress bar."),
) -> None:
    """Import DATA, submit a training job and follow it; the version lands in MLflow."""
    if priority not in PRIORITIES:
        usage_error("--priority", f"{priority!r}: use high, normal or low")
    params = parse_params(param)
    if target:
        params["target"] = target
    with opened() as c:
        dataset = c.datasets.import_file(data, family=family, params=params, actor=ACTOR)
        console.print(f"dataset {dataset.id} ({dataset.rows} rows)")
        request = c.training.validate(
            validated(
                TrainRequest,
                {
                    "family": family,
                    "model": model,
                    "dataset_id": dataset.id,
                    "params": params,
                    "alias": alias,
                },
                {"family": "family", "params": "--param"},
            )
        )
        job = c.jobs.submit("train", request.model_dump(), priority=priority, actor=ACTOR)
        console.print(f"job {job.id} queued")
        if not follow:
            out.print(job.id)
            return
        ensure_worker(c)
        job = follow_job(c, job.id)
        if job.status is not JobStatus.SUCCEEDED:
            console.print(f"[bold red]job {job.status.value}[/]: {job.error or job.message}")
            raise typer.Exit(1)
        result = dict(job.result or {})
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in dict(result.get("metrics", {})).items())
        out.print(
            f"model [bold]{model}[/] version [bold]{result.get('version')}[/] "
            f"(run {result.get('run_id')}, dataset {dataset.id}): {metrics}"
        )


def ensure_worker(c: Container) -> None:
    """Start an in-process worker unless a live one (``serve`` or ``worker``) exists."""
    cutoff = datetime.now(UTC) - timedelta(seconds=c.settings.jobs.heartbeat_timeout_s)
    if not c.job_store.workers(alive_since=cutoff):
        console.print("no running worker found: running the job in this process")
        c.start_workers(1)


def follow_job(c: Container, job_id: str) -> JobRecord:
    """Show a progress bar until the job finishes or pauses."""
    columns = (
        TextColumn("[bold]{task.fields[status]}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("queued", total=1.0, status="queued")
        while True:
            job = c.jobs.get(job_id)
            progress.update(
                task, completed=job.progress, description=job.message[:60], status=job.status.value
            )
            if job.status.finished or job.status is JobStatus.PAUSED:
                return job
            time.sleep(0.25)


@jobs_app.command("list")
def jobs_list(
    status: JobStatus | None = typer.Option(None, help="Only this status."),
    limit: int = typer.Option(20, min=1, max=1000, help="Most jobs listed."),
) -> None:
    with opened() as c:
        jobs = c.jobs.list(status=status, limit=limit)
    table = Table("id", "kind", "status", "progress", "attempts", "message")
    for j in jobs:
        table.add_row(
            j.id, j.kind, j.status.value, f"{j.progress:.0%}", str(j.attempts), j.message[:50]
        )
    out.print(table)


@jobs_app.command("show")
def jobs_show(job_id: str) -> None:
    with opened() as c:
        job = c.jobs.get(job_id)
    emit_json({k: v for k, v in job.__dict__.items()})


@jobs_app.command("pause")
def jobs_pause(job_id: str) -> None:
    with opened() as c:
        out.print(c.jobs.pause(job_id, actor=ACTOR).status.value)


@jobs_app.command("resume")
def jobs_resume(job_id: str, follow: bool = typer.Option(False, help="Follow it.")) -> None:
    with opened() as c:
        job = c.jobs.resume(job_id, actor=ACTOR)
        if follow:
            ensure_worker(c)
            job = follow_job(c, job_id)
        out.print(job.status.value)


@jobs_app.command("cancel")
def jobs_cancel(job_id: str) -> None:
    with opened() as c:
        out.print(c.jobs.cancel(job_id, actor=ACTOR).status.value)

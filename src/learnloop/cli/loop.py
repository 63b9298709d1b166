"""``learnloop feedback …``, ``learnloop dataset from-feedback|synthesize|dp-release``,
``learnloop al …``: the data half of the loop from the command line."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from learnloop.cli.common import (
    console,
    emit_json,
    json_objects,
    opened,
    out,
    read_text,
    say_error,
    usage_error,
    validated,
)
from learnloop.cli.jobs import dataset_app, ensure_worker, follow_job
from learnloop.core.auth import LOCAL_OPERATOR
from learnloop.core.feedback import MAX_BATCH, FeedbackIn
from learnloop.core.records import JobStatus
from learnloop.loop.active_learning import STRATEGIES
from learnloop.loop.dataset_builder import LoopDatasetRequest, PrivacySpec

feedback_app = typer.Typer(help="Feedback events: import, metrics.", no_args_is_help=True)
al_app = typer.Typer(help="Active learning: select, assign, label, stats.", no_args_is_help=True)
ACTOR = LOCAL_OPERATOR.name


@feedback_app.command("import")
def feedback_import(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="JSON Lines: one feedback event per line."
    ),
    batch: int = typer.Option(5_000, min=1, max=MAX_BATCH, help="Events per transaction."),
) -> None:
    """Validate every line first (all or nothing), then store the events in batches with a
    progress bar. Lines with an idempotency key already stored are skipped."""
    events: list[FeedbackIn] = []
    problems: list[str] = []
    for n, line in enumerate(read_text(file, "file").split("\n"), 1):
        if not line.strip():
            continue
        try:
            events.append(FeedbackIn.model_validate_json(line))
        except ValidationError as e:
            for err in e.errors():
                loc = ".".join(str(p) for p in err["loc"])
                problems.append(f"line {n}: {loc or '<event>'}: {err['msg']}")
    if problems:
        for p in problems[:20]:
            say_error(p)
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        noun = "problem" if len(problems) == 1 else "problems"
        console.print(f"{len(problems)} {noun}{more}; nothing was stored")
        raise typer.Exit(2)
    stored = duplicates = orphans = 0
    columns = (TextColumn("feedback"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with opened() as c, Progress(*columns, console=console) as progress:
        task = progress.add_task("import", total=len(events))
        for i in range(0, len(events), batch):
            acks = c.feedback.ingest(events[i : i + batch])
            duplicates += sum(a.duplicate for a in acks)
            orphans += sum(a.orphan for a in acks)
            stored += sum(not a.duplicate for a in acks)
            progress.advance(task, len(acks))
    out.print(f"stored {stored}, duplicates {duplicates}, orphans {orphans}")


@feedback_app.command("metrics")
def feedback_metrics(
    model: str | None = typer.Option(None, help="Only this model."),
    hours: float = typer.Option(24, min=0.01, max=87_600, help="Window length in hours."),
) -> None:
    """Counts, rates and distributions per model/version/arm (JSON)."""
    from datetime import timedelta

    with opened() as c:
        emit_json(c.feedback.metrics(model=model, window=timedelta(hours=hours)))


@dataset_app.command("from-feedback")
def dataset_from_feedback(
    model: str = typer.Argument(..., help="Model whose labelled predictions to use."),
    name: str | None = typer.Option(None, help="Dataset name."),
    since: datetime | None = typer.Option(None, help="Predictions from this time on."),
    until: datetime | None = typer.Option(None, help="Predictions before this time."),
    valid_fraction: float = typer.Option(0.2, help="Latest share held out for validation."),
    k: int | None = typer.Option(None, help="k-anonymity over --qi."),
    l_div: int | None = typer.Option(None, "--l", help="l-diversity of --sensitive."),
    qi: list[str] | None = typer.Option(None, "--qi", help="Quasi-identifier column."),
    sensitive: list[str] | None = typer.Option(None, help="Sensitive column."),
    drop: list[str] | None = typer.Option(None, help="Column never stored."),
) -> None:
    """Build a training snapshot from the ledger joined with feedback (time-based split,
    validation report, optional privacy transforms, lineage)."""
    privacy = None
    if k or l_div or qi or sensitive or drop:
        privacy = validated(
            PrivacySpec,
            {
                "k": k,
                "l": l_div,
                "quasi_identifiers": qi or [],
                "sensitive": sensitive or [],
                "drop_columns": drop or [],
            },
            {"l": "--l", "quasi_identifiers": "--qi", "drop_columns": "--drop"},
        )
    request = validated(
        LoopDatasetRequest,
        {
            "model": model,
            "name": name,
            "since": since,
            "until": until,
            "valid_fraction": valid_fraction,
            "privacy": privacy,
        },
        {"model": "model"},
    )
    with opened() as c:
        record, report = c.dataset_builder.build(request, actor=ACTOR)
    out.print(f"dataset [bold]{record.id}[/] ({record.rows} rows; split {report['split']})")
    if report.get("skewed_features"):
        console.print(f"train/serve skew in: {', '.join(report['skewed_features'])}")


@dataset_app.command("synthesize")
def dataset_synthesize(
    dataset_id: str,
    rows: int | None = typer.Option(None, help="Rows to generate (default: as many as real)."),
    seed: int = typer.Option(0),
    augment_target: str | None = typer.Option(None, help="Oversample rare classes of this."),
    min_fraction: float = typer.Option(0.2, help="Target share of each rare class."),
    method: str = typer.Option("copula", help="copula or smote (augmentation)."),
) -> None:
    """Fit the family's generator on a snapshot and store a synthetic snapshot (a job, with a
    progress bar); prints its fidelity report."""
    payload = {
        "dataset_id": dataset_id,
        "rows": rows,
        "seed": seed,
        "augment_target": augment_target,
        "min_fraction": min_fraction,
        "method": method,
        "conditions": None,
        "name": None,
    }
    with opened() as c:
        c.datasets.get(dataset_id)
        job = c.jobs.submit("synthesize", payload, actor=ACTOR)
        ensure_worker(c)
        job = follow_job(c, job.id)
    if job.status is not JobStatus.SUCCEEDED:
        console.print(f"[bold red]job {job.status.value}[/]: {job.error or job.message}")
        raise typer.Exit(1)
    emit_json(dict(job.result or {}))


@dataset_app.command("dp-release")
def dataset_dp_release(
    dataset_id: str,
    queries: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        help="JSON list of queries (kind, column, bounds, ε…).",
    ),
    seed: int | None = typer.Option(None),
) -> None:
    """Differentially private aggregates, charged to the snapshot's ε budget."""
    parsed = json_objects(read_text(queries, "queries"), "queries", single=False)
    with opened() as c:
        emit_json(c.dp_releases.release(dataset_id, parsed, seed=seed, actor=ACTOR))


@al_app.command("select")
def al_select(
    model: str,
    budget: int = typer.Option(..., min=1, max=10_000, help="How many predictions to queue."),
    strategy: str = typer.Option(
        "uncertainty", help="uncertainty, margin, entropy, diversity, mix or random."
    ),
) -> None:
    """Queue the unlabelled predictions most worth labelling."""
    if strategy not in STRATEGIES:
        usage_error("--strategy", f"{strategy!r}: use one of {', '.join(STRATEGIES)}")
    with opened() as c:
        result = c.active_learning.select(model, strategy, budget)
    out.print(f"pool {result['pool']}; queued {len(result['tasks'])} tasks ({strategy})")


@al_app.command("stats")
def al_stats(model: str | None = typer.Option(None)) -> None:
    with opened() as c:
        emit_json(c.active_learning.queue.stats(model))

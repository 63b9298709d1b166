"""``learnloop models|versions|alias …`` and ``learnloop predict``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from learnloop.cli.common import emit_json, json_objects, opened, out, say_error
from learnloop.core.auth import LOCAL_OPERATOR
from learnloop.core.datasets import read_table

models_app = typer.Typer(help="Registered models.", no_args_is_help=True)
versions_app = typer.Typer(help="Versions of a model.", no_args_is_help=True)
alias_app = typer.Typer(
    help="Aliases: set, history, rollback, point-in-time.", no_args_is_help=True
)
ACTOR = LOCAL_OPERATOR.name


@models_app.command("list")
def models_list() -> None:
    with opened() as c:
        models = c.registry.list_models()
    table = Table("name", "family", "latest", "aliases")
    for m in models:
        aliases = ", ".join(f"{a}→{v}" for a, v in sorted(m.aliases.items()))
        table.add_row(m.name, m.family, m.latest_version or "-", aliases)
    out.print(table)


@models_app.command("show")
def models_show(name: str) -> None:
    with opened() as c:
        emit_json(c.registry.get_model(name).__dict__)


@versions_app.command("list")
def versions_list(model: str) -> None:
    with opened() as c:
        versions = c.registry.list_versions(model)
    table = Table("version", "created", "dataset", "aliases", "metrics")
    for v in versions:
        metrics = ", ".join(f"{k}={x:.3f}" for k, x in list(v.metrics.items())[:4])
        table.add_row(
            v.version,
            f"{v.created_at:%Y-%m-%d %H:%M:%S}",
            v.dataset_id or "-",
            ",".join(v.aliases),
            metrics,
        )
    out.print(table)


@versions_app.command("show")
def versions_show(model: str, version: str) -> None:
    with opened() as c:
        emit_json(c.registry.get_version(model, version).__dict__)


@alias_app.command("set")
def alias_set(
    model: str, alias: str, version: str, reason: str = typer.Option("", help="Why.")
) -> None:
    with opened() as c:
        event = c.registry.set_alias(model, alias, version, actor=ACTOR, reason=reason)
    out.print(f"{model}@{alias}: {event.from_version or '-'} → {event.to_version}")


@alias_app.command("history")
def alias_history(
    model: str, alias: str | None = typer.Option(None, help="Only this alias.")
) -> None:
    """Every move of the model's aliases: when, who, from, to, why."""
    with opened() as c:
        events = c.registry.alias_history(model, alias)
    table = Table("at", "alias", "action", "from", "to", "actor", "reason")
    for e in events:
        table.add_row(
            e.at.isoformat(timespec="seconds"),
            e.alias,
            e.action,
            e.from_version or "-",
            e.to_version or "-",
            e.actor,
            e.reason,
        )
    out.print(table)


@alias_app.command("rollback")
def alias_rollback(
    model: str,
    alias: str = typer.Argument("champion"),
    reason: str = typer.Option("", help="Why."),
) -> None:
    """Point ALIAS back at the version it had before."""
    with opened() as c:
        event = c.registry.rollback(model, alias, actor=ACTOR, reason=reason)
    out.print(f"{model}@{alias}: {event.from_version} → {event.to_version}")


@alias_app.command("at")
def alias_at(model: str, alias: str, when: datetime) -> None:
    """Which version ALIAS pointed to at WHEN (ISO time; local time if no zone)."""
    when = when if when.tzinfo else when.astimezone()
    with opened() as c:
        c.registry.get_model(model)
        version = c.registry.version_at(model, alias, when)
    out.print(version or "-")


def predict(
    model: str = typer.Argument(..., help="Registered model name."),
    input: str | None = typer.Option(
        None, "--input", "-i", help="One JSON object, or a JSON list of objects."
    ),
    file: Path | None = typer.Option(
        None, "--file", "-f", exists=True, dir_okay=False, help="CSV/Parquet of inputs."
    ),
    alias: str | None = typer.Option(None, help="Alias to serve (default: the deployment)."),
    version: str | None = typer.Option(None, help="Explicit version."),
) -> None:
    """Predict locally with a registered version (champion by default)."""
    if (input is None) == (file is None):
        say_error("give exactly one of --input or --file")
        raise typer.Exit(2)
    if input is not None:
        rows = json_objects(input, "--input")
    else:
        assert file is not None
        rows = read_table(file).to_dict(orient="records")
    with opened() as c:
        result = c.serving.predict(model, rows, alias=alias, version=version)
    emit_json(
        {
            "model": result.model,
            "version": result.version,
            "served_by": result.served_by,
            "prediction_ids": result.prediction_ids,
            "outputs": result.outputs,
        }
    )

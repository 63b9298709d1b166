"""``learnloop bench kt``: train and score a knowledge-tracing model on any file of the formats."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from learnloop.cli.common import console, parse_params, usage_error

bench_app = typer.Typer(help="Benchmarks of the built-in families.", no_args_is_help=True)


@bench_app.command("kt")
def kt(
    fmt: str = typer.Option("dkvmn", "--format", "-f", help="dkvmn, dkt, akt or csv."),
    train: list[Path] | None = typer.Option(
        None, "--train", exists=True, dir_okay=False, help="Training file(s)."
    ),
    valid: Path | None = typer.Option(
        None, "--valid", exists=True, dir_okay=False, help="Validation file (early stopping)."
    ),
    test: Path | None = typer.Option(
        None, "--test", exists=True, dir_okay=False, help="Test file."
    ),
    model: str = typer.Option("dkt", "--model", "-m", help="dkt, attentive, bkt or ensemble."),
    epochs: int | None = typer.Option(None, "--epochs", help="Most epochs (networks)."),
    param: list[str] | None = typer.Option(None, "--param", "-p", help="Family param key=value."),
    use_synthetic: bool = typer.Option(
        False, "--use-synthetic", help="Simulated learners instead of files; adds the oracle AUC."
    ),
    learners: int = typer.Option(4000, help="With --use-synthetic: learners simulated."),
    seed: int = typer.Option(0, help="Seed of the fit (and of the simulation)."),
    siblings: str = typer.Option(
        "merge",
        "--siblings",
        help="merge: per-skill copies of one attempt are one attempt (honest); keep: rows as "
        "in the file, as the source papers scored them (the copies leak the answer).",
    ),
    json_out: Path | None = typer.Option(
        None, "--json", dir_okay=False, help="Write the figures here."
    ),
) -> None:
    """Train with early stopping on validation, score the test file, print AUC and accuracy."""
    from learnloop.families.knowledge_tracing import bench

    params = {"model": model, "seed": seed, **parse_params(param)}
    if epochs is not None:
        params["epochs"] = epochs
    if not use_synthetic and (not train or test is None):
        console.print("[bold red]error:[/] give --train and --test (or --use-synthetic)")
        raise typer.Exit(2)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[shown]}"),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(f"{model}: fitting", total=1.0, shown="")

        def report(fraction: float, message: str, metrics: Mapping[str, float] | None) -> None:
            auc = (metrics or {}).get("valid_auc")
            shown = f"{message} valid AUC {auc:.4f}" if auc is not None else message
            progress.update(task, completed=fraction, shown=shown)

        if use_synthetic:
            result = bench.run_synthetic(params, learners=learners, seed=seed, progress=report)
        else:
            assert train is not None and test is not None
            result = bench.run_files(
                fmt, train, valid, test, params, progress=report, siblings=siblings
            )
        progress.update(task, completed=1.0)
    out = bench.summary(result)
    out["machine"] = bench.machine()
    line = f"{model}: test AUC {out['auc']:.4f}, accuracy {out['accuracy']:.4f}, "
    line += f"train {out['train_seconds']:.1f} s"
    if "oracle" in out:
        line += f" (oracle AUC {out['oracle']['auc']:.4f})"
    console.print(line)
    if json_out is not None:
        try:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(out, indent=2, default=str) + "\n", encoding="utf-8")
        except OSError as e:
            usage_error("--json", f"cannot write {json_out}: {e.strerror or e}")
        console.print(f"wrote {json_out}")

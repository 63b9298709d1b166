"""The Typer application: commands grouped by concern in sibling modules."""

from __future__ import annotations

import typer

from learnloop.cli import deploy, gdpr, jobs, loop, registry, server
from learnloop.cli.bench import bench_app
from learnloop.cli.common import LearnloopGroup
from learnloop.cli.kt import kt_app
from learnloop.cli.tune import tune

app = typer.Typer(
    name="learnloop",
    help="learnloop — serve, record, learn from feedback, retrain, roll out safely.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=LearnloopGroup,
)


@app.callback()
def options(
    debug: bool = typer.Option(
        False, "--debug", help="On an unexpected error, print its traceback too."
    ),
) -> None:
    """Options of every command (read by LearnloopGroup)."""


app.command()(server.serve)
app.command()(server.worker)
app.command()(server.migrate)
app.command()(server.demo)
app.command()(jobs.train)
app.command("tune")(tune)
app.command()(registry.predict)
app.add_typer(server.keys_app, name="keys")
app.add_typer(jobs.dataset_app, name="dataset")
app.add_typer(jobs.jobs_app, name="jobs")
app.add_typer(registry.models_app, name="models")
app.add_typer(registry.versions_app, name="versions")
app.add_typer(registry.alias_app, name="alias")
app.add_typer(deploy.deploy_app, name="deploy")
app.add_typer(gdpr.gdpr_app, name="gdpr")
app.add_typer(loop.feedback_app, name="feedback")
app.add_typer(loop.al_app, name="al")
app.add_typer(bench_app, name="bench")
app.add_typer(kt_app, name="kt")

"""``learnloop kt …``: operator commands of the knowledge-tracing family."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from learnloop.cli.common import emit_json, opened

kt_app = typer.Typer(help="Knowledge tracing: learner answers.", no_args_is_help=True)


@kt_app.command("reconcile")
def reconcile(
    model: str = typer.Argument(..., help="A knowledge-tracing model."),
    since: datetime | None = typer.Option(
        None,
        formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"],
        help="Only feedback on predictions from this time (UTC unless it carries an offset); "
        "default: all.",
    ),
    limit: int = typer.Option(100_000, min=1, help="Most labelled predictions read."),
) -> None:
    """Restore answers given as feedback that the stored answers lack (JSON).

    Run it after an unclean shutdown, before the server starts again: a crash between a
    feedback commit and the copy of its answer keeps the feedback and loses the copy. Answers
    already stored are skipped, so running it twice restores nothing the second time. A running
    server has the same as ``POST /v1/kt/{model}/answers/reconcile``, which also updates the
    learner states it holds in memory."""
    from learnloop.families.knowledge_tracing.service import KnowledgeTracingService

    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    with opened() as c:
        emit_json(KnowledgeTracingService(c).reconcile(model, since=since, limit=limit))

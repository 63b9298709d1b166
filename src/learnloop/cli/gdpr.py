"""``learnloop gdpr …``: find, export and forget a data subject."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from learnloop.cli.common import emit_json, opened, out, usage_error
from learnloop.core.auth import LOCAL_OPERATOR

gdpr_app = typer.Typer(help="Data-subject rights: access and erasure.", no_args_is_help=True)
ACTOR = LOCAL_OPERATOR.name


@gdpr_app.command("find")
def find(subject_id: str) -> None:
    """Rows of each store that hold SUBJECT_ID."""
    with opened() as c:
        emit_json({"subject_id": subject_id, "found": c.subjects.find(subject_id)})


@gdpr_app.command("export")
def export(
    subject_id: str,
    output: Path | None = typer.Option(
        None, "--out", "-o", dir_okay=False, help="Write the JSON here."
    ),
) -> None:
    """Everything held about SUBJECT_ID (right of access), as JSON."""
    with opened() as c:
        body = c.subjects.export(subject_id)
    if output is None:
        emit_json(body)
    else:
        try:
            output.write_text(json.dumps(body, indent=2, default=str))
        except OSError as e:
            usage_error("--out", f"cannot write {output}: {e.strerror or e}")
        out.print(f"wrote {output}")


@gdpr_app.command("forget")
def forget(
    subject_id: str,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Erase SUBJECT_ID from the ledger, feedback, labelling queue, datasets, caches and
    indexes; flag the model versions trained on its data "retrain required"."""
    if not yes:
        typer.confirm(
            f"Erase every record of subject {subject_id!r}? This cannot be undone", abort=True
        )
    with opened() as c:
        report = c.subjects.forget(subject_id, actor=ACTOR)
    emit_json(report)

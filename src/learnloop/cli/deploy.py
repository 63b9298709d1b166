"""``learnloop deploy …``: show, apply, promote, roll back deployments; the shadow report."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import yaml

from learnloop.cli.common import emit_json, json_kind, opened, out, read_text, usage_error
from learnloop.core.auth import LOCAL_OPERATOR
from learnloop.core.deployments import parse_spec
from learnloop.core.shadow import shadow_report

deploy_app = typer.Typer(help="Deployments: traffic policy per model.", no_args_is_help=True)
ACTOR = LOCAL_OPERATOR.name


@deploy_app.command("show")
def show(model: str) -> None:
    """The deployment in force (revision 0: implicit single on champion)."""
    with opened() as c:
        emit_json(c.deployments.get(model).model_dump(mode="json"))


@deploy_app.command("apply")
def apply(
    model: str,
    spec_file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="Deployment spec as YAML or JSON."
    ),
    reason: str = typer.Option("", help="Why (kept in the history and audit log)."),
) -> None:
    """Validate SPEC_FILE and store it as the model's new deployment revision."""
    text = read_text(spec_file, "spec_file")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        usage_error("spec_file", f"not YAML or JSON: {getattr(e, 'problem', None) or e}{at}")
    if not isinstance(raw, dict):
        usage_error("spec_file", f"expected a mapping (mode, arms, …), got {json_kind(raw)}")
    with opened() as c:
        deployment = c.deployments.apply(model, parse_spec(raw), actor=ACTOR, reason=reason)
    out.print(f"{model}: revision {deployment.revision} ({deployment.spec.mode})")


@deploy_app.command("promote")
def promote(model: str, reason: str = typer.Option("", help="Why.")) -> None:
    """Next canary step, blue-green switch, or shadow → serving."""
    with opened() as c:
        d = c.deployments.promote(model, actor=ACTOR, reason=reason)
    out.print(f"{model}: revision {d.revision}: {d.reason}")


@deploy_app.command("rollback")
def rollback(model: str, reason: str = typer.Option("", help="Why.")) -> None:
    """Re-apply the previous revision."""
    with opened() as c:
        d = c.deployments.rollback(model, actor=ACTOR, reason=reason)
    out.print(f"{model}: revision {d.revision}: {d.reason}")


@deploy_app.command("history")
def history(model: str) -> None:
    with opened() as c:
        for d in c.deployments.history(model):
            when = d.created_at.isoformat(timespec="seconds") if d.created_at else "-"
            out.print(f"{d.revision:>4}  {when}  {d.spec.mode:<10} {d.actor:<12} {d.reason}")


@deploy_app.command("shadow-report")
def shadow(model: str) -> None:
    """Agreement and latency of the shadow arm against the served one."""
    with opened() as c:
        c.registry.get_model(model)
        out.print(json.dumps(shadow_report(c.predictions.shadow_pairs(model)), indent=2))

"""Training runs: start (a durable ``train`` job whose version gets the ``challenger`` alias),
status with the learning curve, pause, resume, cancel."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import Field

from learnloop.api.schemas import JobResponse
from learnloop.api.security import Reader, Writer, container_of
from learnloop.container import Container
from learnloop.core.auth import Principal
from learnloop.core.errors import NotFound
from learnloop.core.identifiers import AliasName, ObjectId
from learnloop.core.records import JobRecord
from learnloop.loop.training import TrainRequest

router = APIRouter(prefix="/v1/training", tags=["training"])


class StartTraining(TrainRequest):
    alias: AliasName | None = Field(
        "challenger", description="Alias for the new version (default: challenger)."
    )
    priority: Literal["high", "normal", "low"] = Field("normal", description="Queue priority.")


def _train_job(c: Container, run_id: str) -> JobRecord:
    job = c.jobs.get(run_id)
    if job.kind != "train":
        raise NotFound("training run", run_id)
    return job


def run_json(c: Container, job: JobRecord) -> dict[str, Any]:
    """The job plus its learning curve: every metric reported during the fit, by step."""
    curve: dict[str, list[dict[str, float]]] = {}
    for e in c.jobs.events(job.id):
        for name, value in e.metrics.items():
            curve.setdefault(name, []).append(
                {"step": len(curve.get(name, [])), "fraction": e.fraction or 0.0, "value": value}
            )
    body = JobResponse.of(job).model_dump(mode="json")
    body["learning_curve"] = curve
    result = job.result or {}
    body["version"] = result.get("version")
    body["mlflow_run_id"] = result.get("run_id")
    return body


@router.post("/start", status_code=202)
def start(body: StartTraining, request: Request, principal: Principal = Writer) -> dict[str, Any]:
    """Validate and queue a training run. Params, per-step metrics (learning curve), dataset
    snapshot id, seed and code version go to MLflow; checkpoints follow the family's
    ``checkpoint_every``; the new version gets ``alias`` (``challenger``)."""
    c = container_of(request)
    train = c.training.validate(TrainRequest(**body.model_dump(exclude={"priority"})))
    job = c.jobs.submit("train", train.model_dump(), priority=body.priority, actor=principal.name)
    return run_json(c, job)


@router.get("/{run_id}")
def status(run_id: ObjectId, request: Request, principal: Principal = Reader) -> dict[str, Any]:
    c = container_of(request)
    return run_json(c, _train_job(c, run_id))


@router.post("/{run_id}/pause")
def pause(run_id: ObjectId, request: Request, principal: Principal = Writer) -> dict[str, Any]:
    """Stop at the next checkpoint; resume continues from it (same MLflow run)."""
    c = container_of(request)
    _train_job(c, run_id)
    return run_json(c, c.jobs.pause(run_id, actor=principal.name))


@router.post("/{run_id}/resume")
def resume(run_id: ObjectId, request: Request, principal: Principal = Writer) -> dict[str, Any]:
    c = container_of(request)
    _train_job(c, run_id)
    return run_json(c, c.jobs.resume(run_id, actor=principal.name))


@router.post("/{run_id}/cancel")
def cancel(run_id: ObjectId, request: Request, principal: Principal = Writer) -> dict[str, Any]:
    c = container_of(request)
    _train_job(c, run_id)
    return run_json(c, c.jobs.cancel(run_id, actor=principal.name))

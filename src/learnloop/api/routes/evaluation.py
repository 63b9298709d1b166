"""Evaluation runs: a candidate against the champion on a frozen evaluation set, as a job."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ConfigDict, Field

from learnloop.api.schemas import JobResponse
from learnloop.api.security import Reader, Writer, container_of
from learnloop.core.auth import Principal
from learnloop.core.errors import NotFound
from learnloop.core.identifiers import ModelName, ObjectId, Seed, Text, Version
from learnloop.core.inputs import ClientModel

router = APIRouter(prefix="/v1/evaluation", tags=["evaluation"])


class GateIn(ClientModel):
    model_config = ConfigDict(extra="forbid")

    metric: Text = Field(..., description="accuracy, f1, roc_auc, pr_auc, log_loss, ece, rmse, …")
    max_drop: float = Field(
        0.0, ge=0, le=1e9, description="Largest tolerated drop (non-inferiority)."
    )


class EvaluationIn(ClientModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelName
    candidate: Version = Field(..., description="Candidate version.")
    champion: Version | None = Field(
        None, description="Champion version (default: the champion alias)."
    )
    dataset_id: ObjectId = Field(..., description="Frozen evaluation snapshot (its valid split).")
    gates: list[GateIn] = Field(default_factory=list, max_length=32)
    max_latency_p99_ms: float | None = Field(None, gt=0, le=3_600_000)
    latency: bool = True
    n_boot: int = Field(500, ge=0, le=10_000)
    seed: Seed = 0


@router.post("/run", status_code=202)
def run(body: EvaluationIn, request: Request, principal: Principal = Writer) -> dict[str, Any]:
    """Queue an ``evaluate`` job: metrics of both versions, paired-bootstrap gates, latency."""
    c = container_of(request)
    c.registry.get_version(body.model, body.candidate)
    c.datasets.get(body.dataset_id)
    payload = body.model_dump()
    if payload["champion"] is None:
        payload["champion"] = c.registry.current(body.model, "champion")
    job = c.jobs.submit("evaluate", payload, actor=principal.name)
    return JobResponse.of(job).model_dump(mode="json")


@router.get("/{run_id}")
def get(run_id: ObjectId, request: Request, principal: Principal = Reader) -> dict[str, Any]:
    job = container_of(request).jobs.get(run_id)
    if job.kind != "evaluate":
        raise NotFound("evaluation run", run_id)
    return JobResponse.of(job).model_dump(mode="json")

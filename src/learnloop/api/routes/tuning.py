"""Hyperparameter searches (Optuna; Ray Tune when configured) as ``tune`` jobs, and studies."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from learnloop.api.schemas import JobResponse
from learnloop.api.security import Reader, Writer, container_of
from learnloop.core.auth import Principal
from learnloop.core.identifiers import StudyName
from learnloop.loop.tuning import TuneRequest

router = APIRouter(prefix="/v1/tuning", tags=["tuning"])


@router.post("/start", status_code=202)
def start(body: TuneRequest, request: Request, principal: Principal = Writer) -> dict[str, Any]:
    """Validate the search (space, params, dataset) and queue it; trials are nested MLflow runs,
    the study lives in learnloop's database, the best version gets ``alias``."""
    c = container_of(request)
    validated = c.tuning.validate(body)
    job = c.jobs.submit("tune", validated.model_dump(), actor=principal.name)
    return {**JobResponse.of(job).model_dump(mode="json"), "study": validated.study}


@router.get("/studies")
def studies(request: Request, principal: Principal = Reader) -> list[dict[str, Any]]:
    return container_of(request).tuning.list_studies()


@router.get("/studies/{name}")
def study(name: StudyName, request: Request, principal: Principal = Reader) -> dict[str, Any]:
    """Every trial of the study: number, state, value, params."""
    return container_of(request).tuning.study_summary(name)

"""Batch prediction jobs: submit, status, results file."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from pydantic import ConfigDict, Field

from learnloop.api.errors import ErrorBody
from learnloop.api.schemas import JobResponse
from learnloop.api.security import Predictor, container_of
from learnloop.core.auth import Permission, Principal
from learnloop.core.errors import Conflict, NotFound
from learnloop.core.identifiers import AliasName, ModelName, ObjectId, Version
from learnloop.core.inputs import ClientModel
from learnloop.core.paths import MAX_PATH_CHARS

router = APIRouter(prefix="/v1/batch", tags=["batch"])


class BatchSubmitRequest(ClientModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelName
    dataset_id: ObjectId | None = Field(None, description="A dataset snapshot to predict.")
    path: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_PATH_CHARS,
        description="A CSV/Parquet file inside the server's import folders (`files.import_roots`; "
        "relative paths start at the first). Operators and admins only.",
    )
    version: Version | None = None
    alias: AliasName | None = None
    format: Literal["parquet", "csv"] = "parquet"
    chunk_size: int = Field(5_000, ge=1, le=1_000_000)
    priority: Literal["high", "normal", "low"] = "normal"


@router.post("", status_code=202)
def submit(
    body: BatchSubmitRequest, request: Request, principal: Principal = Predictor
) -> JobResponse:
    c = container_of(request)
    if body.path is not None:  # reading server files is an operator's act, not a client's
        principal.require(Permission.WRITE)
    payload = body.model_dump(exclude={"priority"})
    c.batch.parse(payload)
    job = c.jobs.submit("batch_predict", payload, priority=body.priority, actor=principal.name)
    return JobResponse.of(job)


def _batch_job(request: Request, job_id: str) -> JobResponse:
    job = container_of(request).jobs.get(job_id)
    if job.kind != "batch_predict":
        raise NotFound("batch job", job_id)
    return JobResponse.of(job)


@router.get("/{job_id}")
def status(job_id: ObjectId, request: Request, principal: Principal = Predictor) -> JobResponse:
    return _batch_job(request, job_id)


@router.get(
    "/{job_id}/results",
    response_class=FileResponse,
    responses={
        200: {
            "description": "The results file, in the format the job was submitted with.",
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in ("text/csv", "application/vnd.apache.parquet")
            },
        },
        409: {"description": "The job has not succeeded (yet).", "model": ErrorBody},
    },
)
def results(job_id: ObjectId, request: Request, principal: Principal = Predictor) -> FileResponse:
    job = _batch_job(request, job_id)
    path = container_of(request).batch.results_path(job_id)
    if job.status != "succeeded" or path is None:
        raise Conflict(f"batch job {job_id} is {job.status}; results exist once it succeeded")
    media = "text/csv" if path.suffix == ".csv" else "application/vnd.apache.parquet"
    return FileResponse(path, media_type=media, filename=f"{job_id}{path.suffix}")

"""Dataset snapshots: upload (CSV or Parquet body), list, show."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import ConfigDict, Field

from learnloop.api.schemas import DatasetResponse
from learnloop.api.security import Reader, Writer, container_of
from learnloop.core.auth import Principal
from learnloop.core.datasets import read_table
from learnloop.core.errors import InvalidInput, Issue
from learnloop.core.identifiers import Finite, ObjectId, Seed, Text
from learnloop.core.inputs import ClientModel
from learnloop.core.limits import JsonValue, json_object
from learnloop.loop.dataset_builder import LoopDatasetRequest

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

FORMATS = {"csv": ".csv", "parquet": ".parquet", "tsv": ".tsv"}


@router.post(
    "",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The table, in the format the `format` query names (the body's "
            "content type is not read).",
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in (
                    "text/csv",
                    "text/tab-separated-values",
                    "application/vnd.apache.parquet",
                    "application/octet-stream",
                )
            },
        }
    },
)
async def import_dataset(
    request: Request,
    family: Annotated[Text, Query(description="Family whose schema the data must fit.")],
    name: Annotated[Text, Query(description="Dataset name.")],
    format: Literal["csv", "tsv", "parquet"] = Query(
        "csv", description="Body format: csv, tsv or parquet."
    ),
    params: str | None = Query(
        None, max_length=4_096, description="Family params as JSON (e.g. the target)."
    ),
    subject_column: Text | None = Query(
        None, description="Column of subject ids (makes the snapshot reachable by erasure)."
    ),
    principal: Principal = Writer,
) -> DatasetResponse:
    """Import the request body as a validated, immutable snapshot."""
    if format not in FORMATS:
        raise InvalidInput("unknown format", [Issue("format", f"{format!r}: csv, tsv or parquet")])
    try:
        parsed = json.loads(params) if params else None
    except json.JSONDecodeError as e:
        raise InvalidInput("params is not JSON", [Issue("params", str(e))]) from e
    body = await request.body()
    c = container_of(request)
    with tempfile.TemporaryDirectory(prefix="ll-upload-") as tmp:
        path = Path(tmp) / f"upload{FORMATS[format]}"
        path.write_bytes(body)
        frame = read_table(path)
    record = c.datasets.import_frame(
        frame,
        family=family,
        params=parsed,
        name=name,
        source=f"upload:{name}",
        actor=principal.name,
        subject_column=subject_column,
    )
    return DatasetResponse.of(record)


@router.post("/from-feedback", status_code=201)
def from_feedback(
    body: LoopDatasetRequest, request: Request, principal: Principal = Writer
) -> dict[str, Any]:
    """Build a training snapshot from the model's labelled predictions: time-based split,
    optional privacy transforms (drop, k-anonymity, l-diversity), a validation report with
    train/serve skew, and lineage back to the events."""
    c = container_of(request)
    record, report = c.dataset_builder.build(body, actor=principal.name)
    return {"dataset": DatasetResponse.of(record).model_dump(mode="json"), "validation": report}


class DpQueryIn(ClientModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["count", "sum", "mean", "histogram"]
    column: Text | None = None
    bounds: tuple[Finite, Finite] | None = None
    bins: list[JsonValue] | None = Field(None, max_length=10_000)
    epsilon: float = Field(0.1, gt=0, le=1_000)
    delta: float = Field(0.0, ge=0, lt=1)
    mechanism: Literal["laplace", "gaussian"] = "laplace"
    where: json_object(64) | None = None  # type: ignore[valid-type]


class DpReleaseIn(ClientModel):
    model_config = ConfigDict(extra="forbid")

    queries: list[DpQueryIn] = Field(..., min_length=1, max_length=100)
    seed: Seed | None = None
    epsilon_total: float | None = Field(
        None, gt=0, le=1_000, description="The snapshot's total ε, fixed at its first release."
    )
    delta_total: float | None = Field(None, ge=0, lt=1)


@router.post("/{dataset_id}/dp-release")
def dp_release(
    dataset_id: ObjectId, body: DpReleaseIn, request: Request, principal: Principal = Writer
) -> dict[str, Any]:
    """Differentially private aggregates of a snapshot, charged to its ε/δ budget
    (sequential composition; all queries or none). 409 when the budget would be exceeded."""
    c = container_of(request)
    return c.dp_releases.release(
        dataset_id,
        [q.model_dump() for q in body.queries],
        seed=body.seed,
        epsilon_total=body.epsilon_total,
        delta_total=body.delta_total,
        actor=principal.name,
    )


@router.get("/{dataset_id}/privacy-budget")
def privacy_budget(
    dataset_id: ObjectId, request: Request, principal: Principal = Reader
) -> dict[str, Any]:
    c = container_of(request)
    c.datasets.get(dataset_id)
    return c.dp_releases.budget(dataset_id)


class SynthesizeIn(ClientModel):
    model_config = ConfigDict(extra="forbid")

    rows: int | None = Field(None, ge=1, le=10_000_000, description="Default: as many as real.")
    seed: Seed = 0
    conditions: json_object(256) | None = Field(  # type: ignore[valid-type]
        None, description="Fixed categorical values."
    )
    augment_target: Text | None = Field(
        None, description="Edge-case augmentation: oversample rare classes of this column."
    )
    min_fraction: float = Field(0.2, gt=0, le=0.5)
    method: Literal["copula", "smote"] = "copula"
    name: Text | None = None


@router.post("/{dataset_id}/synthesize", status_code=202)
def synthesize(
    dataset_id: ObjectId, body: SynthesizeIn, request: Request, principal: Principal = Writer
) -> dict[str, Any]:
    """Start a job that fits the family's synthesizer on the snapshot and writes a new
    snapshot marked synthetic, with a fidelity report in its manifest."""
    c = container_of(request)
    c.datasets.get(dataset_id)
    job = c.jobs.submit(
        "synthesize", {"dataset_id": dataset_id, **body.model_dump()}, actor=principal.name
    )
    return {"job_id": job.id, "status": job.status.value}


@router.get("")
def list_datasets(
    request: Request, family: Text | None = None, principal: Principal = Reader
) -> list[DatasetResponse]:
    return [DatasetResponse.of(d) for d in container_of(request).datasets.list(family)]


@router.get("/{dataset_id}")
def get_dataset(
    dataset_id: ObjectId, request: Request, principal: Principal = Reader
) -> DatasetResponse:
    return DatasetResponse.of(container_of(request).datasets.get(dataset_id))

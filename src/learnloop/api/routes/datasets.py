"""Dataset snapshots: upload (CSV or Parquet body), list, show."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from fastapi import APIRouter, Query, Request

from learnloop.api.schemas import DatasetResponse
from learnloop.api.security import Reader, Writer, container_of
from learnloop.core.auth import Principal
from learnloop.core.datasets import read_table
from learnloop.core.errors import InvalidInput, Issue

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

FORMATS = {"csv": ".csv", "parquet": ".parquet", "tsv": ".tsv"}


@router.post("", status_code=201)
async def import_dataset(
    request: Request,
    family: str = Query(description="Family whose schema the data must fit."),
    name: str = Query(description="Dataset name."),
    format: str = Query("csv", description="Body format: csv, tsv or parquet."),
    params: str | None = Query(None, description="Family params as JSON (e.g. the target)."),
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
    )
    return DatasetResponse.of(record)


@router.get("")
def list_datasets(
    request: Request, family: str | None = None, principal: Principal = Reader
) -> list[DatasetResponse]:
    return [DatasetResponse.of(d) for d in container_of(request).datasets.list(family)]


@router.get("/{dataset_id}")
def get_dataset(
    dataset_id: str, request: Request, principal: Principal = Reader
) -> DatasetResponse:
    return DatasetResponse.of(container_of(request).datasets.get(dataset_id))

"""Batch prediction as a durable job.

Payload of a ``batch_predict`` job: ``model``, a ``dataset_id`` (a snapshot) or a ``path`` (a
CSV/Parquet file inside the configured import folders, see :mod:`learnloop.core.paths`; only
operators and admins may name files), optional ``version``/``alias`` (default: the version the
deployment's first serving arm points to, resolved once so the whole batch uses one version),
``format`` (``parquet`` or ``csv``) and ``chunk_size``. The job predicts chunk by chunk,
checkpoints the rows done (a paused or interrupted job resumes after the last chunk written)
and writes ``<home>/batch/<job id>/results.<format>``: the input columns plus the output
fields (``prediction``, ``probabilities`` as JSON text for CSV). The job's result names the
input as the client gave it (relative to its import folder), never a server path.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import ConfigDict, Field, ValidationError

from learnloop.core.datasets import DatasetService, read_table
from learnloop.core.errors import InvalidInput, Issue
from learnloop.core.family import issues_of
from learnloop.core.identifiers import AliasName, ModelName, ObjectId, Version
from learnloop.core.inputs import ClientModel
from learnloop.core.jobs import JobContext
from learnloop.core.paths import MAX_PATH_CHARS, FileRoots
from learnloop.core.registry import RegistryService
from learnloop.core.serving import ServingEngine


class BatchRequest(ClientModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelName
    dataset_id: ObjectId | None = None
    path: str | None = Field(None, min_length=1, max_length=MAX_PATH_CHARS)
    version: Version | None = None
    alias: AliasName | None = None
    format: Literal["parquet", "csv"] = "parquet"
    chunk_size: int = Field(5_000, ge=1, le=1_000_000)


class BatchService:
    def __init__(
        self,
        engine: ServingEngine,
        registry: RegistryService,
        datasets: DatasetService,
        root: Path,
        files: FileRoots,
    ) -> None:
        self.engine = engine
        self.registry = registry
        self.datasets = datasets
        self.root = root
        self.files = files

    def parse(self, payload: Mapping[str, Any]) -> BatchRequest:
        try:
            request = BatchRequest.model_validate(dict(payload))
        except ValidationError as e:
            raise InvalidInput(
                "invalid batch request",
                [Issue(f"payload.{i.loc}", i.message) for i in issues_of(e)],
            ) from e
        if (request.dataset_id is None) == (request.path is None):
            raise InvalidInput(
                "invalid batch request", [Issue("payload", "give exactly one of dataset_id, path")]
            )
        self.registry.get_model(request.model)
        if request.dataset_id:
            self.datasets.get(request.dataset_id)
        else:
            self.files.resolve(str(request.path), "payload.path")
        return request

    def results_path(self, job_id: str) -> Path | None:
        folder = self.root / job_id
        for fmt in ("parquet", "csv"):
            if (folder / f"results.{fmt}").exists():
                return folder / f"results.{fmt}"
        return None

    def run_job(self, ctx: JobContext) -> Mapping[str, Any]:
        request = self.parse(ctx.payload)
        frame = (
            self.datasets.load(request.dataset_id)
            if request.dataset_id
            else self._read(str(request.path))
        )
        state = ctx.load_checkpoint()
        done = 0
        version = request.version
        if isinstance(state, dict):
            done, version = int(state["rows_done"]), str(state["version"])
        if version is None:
            if request.alias:
                version = self.registry.resolve(request.model, request.alias)
            else:
                _, spec = self.engine.deployment(request.model)
                arm = spec.effective_weights()[0][0]
                version = (
                    self.registry.resolve(request.model, arm.alias)
                    if arm.alias
                    else str(arm.version)
                )
        parts = ctx.checkpoint_dir / "parts"
        parts.mkdir(parents=True, exist_ok=True)
        total = len(frame)
        rows = json.loads(frame.to_json(orient="records", date_format="iso"))
        while done < total:
            chunk = rows[done : done + request.chunk_size]
            served = self.engine.predict(request.model, chunk, version=version)
            out = pd.DataFrame(served.outputs)
            if "probabilities" in out and request.format == "csv":
                out["probabilities"] = out["probabilities"].map(json.dumps)
            part = frame.iloc[done : done + len(chunk)].reset_index(drop=True)
            pd.concat([part, out.add_prefix("output_")], axis=1).to_parquet(
                parts / f"{done:012d}.parquet", index=False
            )
            done += len(chunk)
            ctx.save_checkpoint({"rows_done": done, "version": version}, done)
            ctx.progress(done / total, f"{done}/{total} rows predicted with version {version}")
            ctx.check_control()
        folder = self.root / ctx.job.id
        folder.mkdir(parents=True, exist_ok=True)
        result = (
            pd.concat(
                [pd.read_parquet(p) for p in sorted(parts.glob("*.parquet"))], ignore_index=True
            )
            if total
            else frame
        )
        target = folder / f"results.{request.format}"
        if request.format == "csv":
            result.to_csv(target, index=False)
        else:
            result.to_parquet(target, index=False)
        shutil.rmtree(parts, ignore_errors=True)
        return {
            "model": request.model,
            "version": version,
            "rows": total,
            "results": f"/v1/batch/{ctx.job.id}/results",
            "format": request.format,
        }

    def _read(self, raw: str) -> pd.DataFrame:
        """The client's file, confined to the import folders; errors name it as the client
        did (the reader's own messages carry server paths)."""
        path = self.files.resolve(raw, "payload.path")
        try:
            return read_table(path)
        except InvalidInput as e:
            cause = e.__cause__
            what = type(cause).__name__ if cause is not None else "unsupported file type"
            raise InvalidInput(
                "cannot read data",
                [
                    Issue(
                        "payload.path",
                        f"{raw!r}: {what} (use .csv, .tsv, .parquet or .csv.gz with a header row)",
                    )
                ],
            ) from None

"""Training as a durable job.

Payload of a ``train`` job: ``family``, ``model``, ``dataset_id``, ``params`` (the family's),
optional ``alias`` (set on the new version) and ``description``. The handler fits with the job's
context (progress, checkpoints, pause/cancel), logs params and per-step metrics to one MLflow
run (a resumed job continues the same run), registers the version with its dataset snapshot id
and code version, and optionally moves an alias.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from learnloop import __version__
from learnloop.core.catalog import FamilyCatalog
from learnloop.core.datasets import DatasetService
from learnloop.core.errors import InvalidInput, Issue
from learnloop.core.family import issues_of
from learnloop.core.jobs import JobContext
from learnloop.core.registry import ALIAS_RE, RegistryService, check_name

RUN_ID_FILE = "mlflow_run_id"


class TrainRequest(BaseModel):
    """What a training job needs."""

    model_config = ConfigDict(extra="forbid")

    family: str = Field(description="Family name, e.g. `tabular`.")
    model: str = Field(description="Registered model name (created on first use).")
    dataset_id: str = Field(description="Dataset snapshot to train on.")
    params: dict[str, Any] = Field(default_factory=dict, description="The family's Params.")
    alias: str | None = Field(None, description="Alias to point at the new version.")
    description: str = Field("", description="Model description, used when it is created.")


class TrainingService:
    """Validates a training request up front and runs ``train`` jobs."""

    def __init__(
        self, families: FamilyCatalog, datasets: DatasetService, registry: RegistryService
    ) -> None:
        self.families = families
        self.datasets = datasets
        self.registry = registry

    @staticmethod
    def parse(payload: Mapping[str, Any]) -> TrainRequest:
        """A raw ``train`` payload as a request; errors name ``payload.<field>``."""
        try:
            return TrainRequest.model_validate(dict(payload))
        except ValidationError as e:
            issues = [Issue(f"payload.{i.loc}", i.message) for i in issues_of(e)]
            raise InvalidInput("invalid train payload", issues) from e

    def validate(self, request: TrainRequest) -> TrainRequest:
        """Fail fast (before queueing) on unknown family/dataset, bad params or bad names."""
        family_cls = self.families.get(request.family)
        check_name("model", request.model)
        if request.alias:
            check_name("alias", request.alias, ALIAS_RE)
        params = family_cls.parse_params(request.params)
        record = self.datasets.get(request.dataset_id)
        if record.family != request.family:
            raise InvalidInput(
                "dataset belongs to another family",
                [Issue("dataset_id", f"{record.id} is a {record.family!r} dataset")],
            )
        return request.model_copy(update={"params": params.model_dump()})

    def run_job(self, ctx: JobContext) -> Mapping[str, Any]:
        request = TrainRequest.model_validate(ctx.payload)
        actor = ctx.job.submitted_by or "job"
        family_cls = self.families.get(request.family)
        model = family_cls(request.params)
        frame = self.datasets.load(request.dataset_id)
        model.check_frame(frame)
        self.registry.ensure_model(
            request.model, request.family, actor=actor, description=request.description
        )
        run_file = ctx.checkpoint_dir / RUN_ID_FILE
        previous_run = run_file.read_text().strip() if run_file.exists() else None
        tags = {
            "learnloop.job_id": ctx.job.id,
            "learnloop.model": request.model,
            "learnloop.family": request.family,
            "learnloop.dataset_id": request.dataset_id,
            "learnloop.code_version": __version__,
        }
        started = time.perf_counter()
        with self.registry.registry.run(f"{request.model}-train", tags, previous_run) as run:
            ctx.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            run_file.write_text(run.run_id)
            params = model.params.model_dump()
            run.log_params({**params, "dataset_id": request.dataset_id, "rows": len(frame)})
            ctx.metric_sinks.append(run.log_metrics)
            fit = model.fit(frame, ctx)
            run.log_metrics({f"final_{k}": v for k, v in fit.metrics.items()})
            run.log_metrics({"train_seconds": time.perf_counter() - started})
            ctx.progress(1.0, "registering version")
            with tempfile.TemporaryDirectory(prefix="ll-artifact-") as tmp:
                model.save(Path(tmp))
                version = self.registry.register(
                    request.model,
                    Path(tmp),
                    actor=actor,
                    family=request.family,
                    run_id=run.run_id,
                    params=params,
                    metrics=fit.metrics,
                    dataset_id=request.dataset_id,
                    code_version=__version__,
                )
        if request.alias:
            self.registry.set_alias(
                request.model,
                request.alias,
                version.version,
                actor=actor,
                reason=f"trained by job {ctx.job.id}",
            )
        return {
            "model": request.model,
            "version": version.version,
            "run_id": version.run_id,
            "dataset_id": request.dataset_id,
            "metrics": dict(fit.metrics),
            "info": {k: v for k, v in fit.info.items() if _jsonable(v)},
            "alias": request.alias,
            "train_seconds": round(time.perf_counter() - started, 3),
        }


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | list | dict | type(None))

"""Training as a durable job.

Payload of a ``train`` job: ``family``, ``model``, ``dataset_id``, ``params`` (the family's),
optional ``alias`` (set on the new version) and ``description``. The handler fits with the job's
context (progress, checkpoints, pause/cancel), logs params and per-step metrics to one MLflow
run (a resumed job continues the same run), registers the version with its dataset snapshot id
and code version, and optionally moves an alias.

With ``warm_start_from`` the fit continues a previous version of the same model, optionally
replaying ``replay_fraction`` of that version's data, and the result holds a forgetting report
(see :mod:`learnloop.loop.incremental`).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, ValidationError

from learnloop import __version__
from learnloop.core.catalog import FamilyCatalog
from learnloop.core.datasets import DatasetService
from learnloop.core.errors import InvalidInput, Issue
from learnloop.core.family import AnyFamily, issues_of
from learnloop.core.identifiers import ALIAS_RE, AliasName, ModelName, ObjectId, Text
from learnloop.core.inputs import ClientModel
from learnloop.core.jobs import JobContext
from learnloop.core.limits import JsonObject
from learnloop.core.registry import RegistryService, check_name
from learnloop.loop.incremental import (
    WarmStart,
    check_warm_start,
    forgetting_report,
    prepare_warm_start,
    resolve_previous,
)

RUN_ID_FILE = "mlflow_run_id"


class FitRequest(ClientModel):
    """What every fitting job names: the family, the model, the data and base params."""

    model_config = ConfigDict(extra="forbid")

    family: Text = Field(description="Family name, e.g. `tabular`.")
    model: ModelName = Field(description="Registered model name (created on first use).")
    dataset_id: ObjectId = Field(description="Dataset snapshot to fit on.")
    params: JsonObject = Field(
        default_factory=dict, max_length=256, description="The family's Params."
    )


def check_fit_request(
    families: FamilyCatalog, datasets: DatasetService, request: FitRequest, alias: str | None
) -> type[Any]:
    """The request's family class, after checking names and that the dataset is the family's
    (before anything is queued)."""
    family_cls = families.get(request.family)
    check_name("model", request.model)
    if alias:
        check_name("alias", alias, ALIAS_RE)
    record = datasets.get(request.dataset_id)
    if record.family != request.family:
        raise InvalidInput(
            "dataset belongs to another family",
            [Issue("dataset_id", f"{record.id} is a {record.family!r} dataset")],
        )
    return family_cls


class TrainRequest(FitRequest):
    """What a training job needs."""

    alias: AliasName | None = Field(None, description="Alias to point at the new version.")
    description: str = Field(
        "", max_length=4096, description="Model description, used when it is created."
    )
    warm_start_from: str | None = Field(
        None,
        max_length=80,
        description="Continue this version of the same model instead of fitting from scratch: "
        "a version number or `alias:NAME` (e.g. `alias:champion`); validation pins an alias to "
        "its current version.",
    )
    replay_fraction: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="With warm_start_from: share of the previous version's training rows "
        "(outside its evaluation set) mixed into the new data as training rows.",
    )
    forgetting_eval: bool = Field(
        True,
        description="With warm_start_from: score the previous and the new version on the "
        "previous version's held-out rows (`result.forgetting`).",
    )


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
        """Fail fast (before queueing) on unknown family/dataset, bad params or bad names, and
        on a warm start that cannot happen; an ``alias:NAME`` in ``warm_start_from`` is pinned
        to the version it points at now."""
        family_cls = check_fit_request(self.families, self.datasets, request, request.alias)
        params = family_cls.parse_params(request.params)
        update: dict[str, Any] = {"params": params.model_dump()}
        if request.warm_start_from is not None:
            previous = check_warm_start(
                self.registry,
                self.datasets,
                family_cls,
                model=request.model,
                ref=request.warm_start_from,
                params=params,
                needs_data=request.replay_fraction > 0 or request.forgetting_eval,
            )
            update["warm_start_from"] = previous.version
        elif request.replay_fraction > 0:
            raise InvalidInput(
                "replay needs a previous version",
                [Issue("replay_fraction", "only used with warm_start_from")],
            )
        return request.model_copy(update=update)

    def run_job(self, ctx: JobContext) -> Mapping[str, Any]:
        request = TrainRequest.model_validate(ctx.payload)
        actor = ctx.job.submitted_by or "job"
        family_cls = self.families.get(request.family)
        model = family_cls(request.params)
        frame = self.datasets.load(request.dataset_id)
        model.check_frame(frame)
        warm = self._warm_start(request, family_cls) if request.warm_start_from else None
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
            if warm is not None:
                run.set_tags({"learnloop.warm_start_from": warm.version.version})
                run.log_params(_warm_params(request, warm))
            ctx.metric_sinks.append(run.log_metrics)
            if warm is None:
                fit = model.fit(frame, ctx)
            else:
                fit = model.fit_incremental(warm.mixed(frame), ctx, warm.previous)
            run.log_metrics({f"final_{k}": v for k, v in fit.metrics.items()})
            forgetting = None if warm is None else forgetting_report(warm, model, fit.metrics)
            if forgetting is not None:
                run.log_metrics(
                    {
                        "forgetting_before": forgetting["before"],
                        "forgetting_after": forgetting["after"],
                        "forgetting": forgetting["forgetting"],
                    }
                )
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
            "warm_start": None if warm is None else _warm_params(request, warm),
            "forgetting": forgetting,
        }

    def _warm_start(self, request: TrainRequest, family_cls: type[AnyFamily]) -> WarmStart:
        assert request.warm_start_from is not None
        version = resolve_previous(self.registry, request.model, request.warm_start_from)
        return prepare_warm_start(
            self.registry,
            self.datasets,
            family_cls,
            version,
            replay_fraction=request.replay_fraction,
            seed=int(request.params.get("seed", 0)),
            forgetting_eval=request.forgetting_eval,
        )


def _warm_params(request: TrainRequest, warm: WarmStart) -> dict[str, Any]:
    return {
        "warm_start_from": warm.version.version,
        "replay_fraction": request.replay_fraction,
        "replay_rows": len(warm.replay),
    }


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | list | dict | type(None))

"""Hyperparameter search as a durable ``tune`` job.

Payload: a :class:`TuneRequest`. The handler resolves the metric (the family's validation
metric unless named) and its direction, opens the Optuna study named ``study_name`` in
learnloop's own database (an existing study is continued), warm-starts it with the best params
of the model's other studies, then runs the remaining trials — in this process with Optuna
(``workers`` threads), or on Ray Tune when a Ray address is configured. One MLflow parent run per
job holds a child run per trial. The best trial's model (kept from its fit, or refitted when it
came from an earlier job) is registered as a new version and the alias moved to it.

A paused job resumes with the same study and parent run and runs only the trials it still owes;
trials it left RUNNING are marked FAIL first.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from learnloop import __version__
from learnloop.core.catalog import FamilyCatalog
from learnloop.core.datasets import DatasetService
from learnloop.core.errors import Conflict, InvalidInput, Issue, NotFound, TrainingError
from learnloop.core.fitting import LocalFitContext
from learnloop.core.identifiers import AliasName, Seed, StudyName, Text
from learnloop.core.jobs import JobContext
from learnloop.core.limits import json_object
from learnloop.core.registry import ModelRegistry, RegistryService, check_name
from learnloop.loop.training import FitRequest, check_fit_request
from learnloop.loop.tuning.plan import SearchPlan, SearchRun
from learnloop.loop.tuning.space import SearchSpace, default_space
from learnloop.loop.tuning.studies import StudyBook
from learnloop.loop.tuning.trials import (
    BestArtifact,
    Direction,
    TrialTracker,
    default_metric,
    infer_direction,
    jsonable,
)

RUN_ID_FILE = "mlflow_parent_run_id"


class TuneRequest(FitRequest):
    """What a search needs; only ``family``, ``model`` and ``dataset_id`` are required.
    ``params`` are the fixed base params of every trial."""

    space: dict[str, json_object(16)] | None = Field(  # type: ignore[valid-type]
        None,
        max_length=256,
        description="Param → spec (type, low, high, log, choices); None: family default.",
    )
    n_trials: int = Field(20, ge=1, le=10_000, description="Trials this job runs.")
    metric: Text | None = Field(None, description="Validation metric; None: the family's.")
    direction: Direction | None = Field(None, description="None: inferred from the metric.")
    study_name: StudyName | None = Field(None, description="None: '<model>-<family>'.")
    warm_start: bool = Field(True, description="Enqueue the best params of the model's studies.")
    timeout_s: float | None = Field(
        None, gt=0, le=30 * 86_400, description="Stop starting trials after this."
    )
    workers: int = Field(1, ge=1, le=64, description="Trials run at once by this job.")
    seed: Seed = Field(0, description="Seed of the sampler.")
    register_best: bool = Field(True, description="Register the best trial as a version.")
    alias: AliasName | None = Field("challenger", description="Alias moved to that version.")

    @property
    def study(self) -> str:
        return self.study_name or f"{self.model}-{self.family}"


class TuningService:
    """Validates search requests and runs ``tune`` jobs (see module docstring)."""

    def __init__(
        self,
        families: FamilyCatalog,
        datasets: DatasetService,
        registry: RegistryService,
        *,
        database_url: str,
        ray_address: str | None = None,
        tracking: ModelRegistry | None = None,
    ) -> None:
        self.families = families
        self.datasets = datasets
        self.registry = registry
        self.database_url = database_url
        self.ray_address = ray_address
        self.tracking = tracking if tracking is not None else registry.registry
        self.studies = StudyBook(database_url)

    def validate(self, request: TuneRequest) -> TuneRequest:
        """Fail before queueing: unknown family or dataset, bad names, params or space.

        Space errors name ``space.<param>.<field>``; a bound the family's params reject names
        the bound (``space.num_leaves.low``)."""
        family_cls = check_fit_request(self.families, self.datasets, request, request.alias)
        check_name("study_name", request.study)
        base = family_cls.parse_params(request.params).model_dump()
        raw_space = request.space if request.space is not None else default_space(request.family)
        space = SearchSpace.parse(raw_space, family_cls.Params)
        issues = []
        for name, spec in space.specs.items():
            ends = {"choices": spec.choices} if spec.type == "categorical" else {}
            if not ends:
                cast = int if spec.type == "int" else float
                ends = {"low": [cast(spec.low)], "high": [cast(spec.high)]}
            for end, values in ends.items():
                for value in values or []:
                    try:
                        family_cls.parse_params({**base, name: value})
                    except InvalidInput as e:
                        why = "; ".join(i.message for i in e.issues) or e.message
                        issues.append(Issue(f"space.{name}.{end}", f"{value!r}: {why}"))
        if issues:
            raise InvalidInput("invalid search space", issues)
        return request.model_copy(
            update={"params": base, "space": {k: v.model_dump() for k, v in space.specs.items()}}
        )

    def study_summary(self, study_name: str) -> dict[str, Any]:
        """The study's trials (number, state, value, params, intermediate values) and best."""
        return self.studies.summary(study_name)

    def list_studies(self) -> list[dict[str, Any]]:
        """Every study in the database: name, model, metric, direction, trials, best value."""
        return self.studies.list()

    def run_job(self, ctx: JobContext) -> Mapping[str, Any]:
        request = self.validate(TuneRequest.model_validate(ctx.payload))
        actor = ctx.job.submitted_by or "job"
        family_cls = self.families.get(request.family)
        frame = self.datasets.load(request.dataset_id)
        family_cls(request.params).check_frame(frame)
        metric = request.metric or default_metric(
            request.family, frame, family_cls.parse_params(request.params)
        )
        direction = request.direction or infer_direction(metric)
        study = self.studies.open(
            request.study,
            direction,
            seed=request.seed,
            model=request.model,
            family=request.family,
            metric=metric,
        )
        done_before = self.studies.settle_job(study, ctx.job.id)
        space = SearchSpace.parse(request.space or {}, family_cls.Params)
        warm = self.studies.warm_start(study, request.model, space) if request.warm_start else 0
        plan = SearchPlan(
            family_cls=family_cls,
            frame=frame,
            base=dict(request.params),
            space=space,
            metric=metric,
            direction=direction,
            study_name=request.study,
            n_trials=max(request.n_trials - done_before, 0),
            timeout_s=request.timeout_s,
            workers=request.workers,
            seed=request.seed,
            job_id=ctx.job.id,
        )
        backend = "ray" if self.ray_address else "optuna"
        best = BestArtifact(direction)
        run_file = ctx.checkpoint_dir / RUN_ID_FILE
        previous_run = run_file.read_text().strip() if run_file.exists() else None
        tags = {
            "learnloop.job_id": ctx.job.id,
            "learnloop.model": request.model,
            "learnloop.family": request.family,
            "learnloop.dataset_id": request.dataset_id,
            "learnloop.study": request.study,
            "learnloop.code_version": __version__,
        }

        def progress(done: int, message: str) -> None:
            ctx.progress(min(done / request.n_trials, 1.0), message)

        try:
            with self.tracking.run(f"{request.study}-tune", tags, previous_run) as parent:
                ctx.checkpoint_dir.mkdir(parents=True, exist_ok=True)
                run_file.write_text(parent.run_id)
                parent.log_params(
                    {
                        **jsonable(request.params),
                        "study": request.study,
                        "metric": metric,
                        "direction": direction,
                        "n_trials": request.n_trials,
                        "backend": backend,
                        "dataset_id": request.dataset_id,
                    }
                )
                tracker = TrialTracker(self.tracking, parent.run_id, tags, progress, done_before)
                search = SearchRun(tracker, best, ctx.check_control, ctx.checkpoint_dir)
                if self.ray_address:
                    from learnloop.loop.tuning.ray_backend import run_ray_search

                    pruned_here = run_ray_search(plan, self.studies, self.ray_address, search)
                else:
                    from learnloop.loop.tuning.optuna_backend import run_optuna_search

                    run_optuna_search(plan, study, search)
                    pruned_here = None
                ctx.check_control()
                summary = self.studies.summary(request.study)
                if summary["best_params"] is None:
                    raise TrainingError(f"no trial of study {request.study!r} completed")
                parent.log_metrics({f"best_{metric}": summary["best_value"]})
                version = None
                if request.register_best:
                    ctx.progress(1.0, "registering the best trial")
                    version = self._register(request, plan, summary, best, parent.run_id, actor)
        finally:
            best.discard()
        if version is not None and request.alias:
            self.registry.set_alias(
                request.model,
                request.alias,
                version,
                actor=actor,
                reason=f"best trial of study {request.study} (job {ctx.job.id})",
            )
        counts = summary["states"]
        return {
            "study": request.study,
            "metric": metric,
            "direction": direction,
            "best_value": summary["best_value"],
            "best_params": summary["best_params"],
            "best_trial": summary["best_trial"],
            "trials": sum(counts.values()),
            "pruned": counts.get("PRUNED", 0) if pruned_here is None else pruned_here,
            "job_trials": search.tracker.done - done_before,
            "warm_started": warm,
            "version": version,
            "alias": request.alias if version is not None else None,
            "backend": backend,
        }

    def _register(
        self,
        request: TuneRequest,
        plan: SearchPlan,
        summary: Mapping[str, Any],
        best: BestArtifact,
        run_id: str,
        actor: str,
    ) -> str:
        """Register the study's best trial: its kept model, or a refit with its params."""
        params = plan.trial_params(dict(summary["best_params"]))
        metrics = dict(summary["best_metrics"] or {})
        self.registry.ensure_model(request.model, request.family, actor=actor)
        with tempfile.TemporaryDirectory(prefix="ll-artifact-") as tmp:
            kept = best.path(summary["best_trial"])
            if kept is None:
                model = plan.family_cls(params)
                metrics = dict(model.fit(plan.frame, LocalFitContext(Path(tmp) / "ck")).metrics)
                kept = Path(tmp) / "model"
                kept.mkdir()
                model.save(kept)
            try:
                version = self.registry.register(
                    request.model,
                    kept,
                    actor=actor,
                    family=request.family,
                    run_id=run_id,
                    params=params,
                    metrics=metrics,
                    dataset_id=request.dataset_id,
                    code_version=__version__,
                )
            except NotFound as e:  # pragma: no cover - the model was deleted meanwhile
                raise Conflict(f"model {request.model!r} vanished during the search") from e
        return version.version

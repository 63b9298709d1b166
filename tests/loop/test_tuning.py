"""Hyperparameter search: studies in learnloop's database, pruning, parallel workers, Ray."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from learnloop.container import Container
from learnloop.core.errors import InvalidInput
from learnloop.loop.tuning import TuneRequest, TuningService
from learnloop.storage.sql.database import Database
from learnloop.testing.databases import postgres_schema
from tests.conftest import LEAKS, fast_settings, require_postgres

BASE = {"target": "Machine failure", "drop_columns": LEAKS, "n_estimators": 20}
SPACE = {
    "learning_rate": {"type": "float", "low": 0.02, "high": 0.3, "log": True},
    "num_leaves": {"type": "int", "low": 4, "high": 32, "log": True},
}


def open_container(home: Path, database_url: str | None = None) -> tuple[Container, TuningService]:
    overrides: dict[str, Any] = {"database": {"url": database_url}} if database_url else {}
    c = Container(fast_settings(home, **overrides)).open()
    service = TuningService(
        c.families, c.datasets, c.registry, database_url=c.settings.database_url, ray_address=None
    )
    c.job_handlers = {**c.job_handlers, "tune": service.run_job}  # type: ignore[misc]
    return c, service


@pytest.fixture
def tuning(tmp_path: Path) -> Iterator[tuple[Container, TuningService]]:
    c, service = open_container(tmp_path / "home")
    yield c, service
    c.close()


def dataset(c: Container, frame: pd.DataFrame) -> str:
    record = c.datasets.import_frame(
        frame, family="tabular", params=BASE, name="ai4i", source="test", actor="test"
    )
    return record.id


def tune(c: Container, service: TuningService, threads: int = 1, **fields: Any) -> dict[str, Any]:
    return wait(c, submit(c, service, **fields), threads)


def submit(c: Container, service: TuningService, **fields: Any) -> str:
    fields = {"family": "tabular", "model": "failure", "params": BASE, "space": SPACE, **fields}
    request = service.validate(TuneRequest(**fields))
    return c.jobs.submit("tune", request.model_dump(), actor="test").id


def wait(c: Container, job_id: str, threads: int = 1) -> dict[str, Any]:
    c.start_workers(threads)
    done = c.jobs.wait(job_id, 120)
    assert done.status.value == "succeeded", done.traceback
    return dict(done.result or {})


def numbers(summary: dict[str, Any]) -> list[int]:
    return sorted(t["number"] for t in summary["trials"])


def test_study_is_stored_continued_and_warm_starts_others(tuning, ai4i_sample):
    c, service = tuning
    data = dataset(c, ai4i_sample)
    first = tune(c, service, dataset_id=data, n_trials=3, study_name="lab")
    assert first["study"] == "lab" and first["backend"] == "optuna"
    assert first["metric"] == "roc_auc" and first["direction"] == "maximize"
    assert first["trials"] == 3 and 0.5 < first["best_value"] <= 1.0
    assert set(first["best_params"]) == set(SPACE)
    assert c.registry.resolve("failure", "challenger") == first["version"]
    version = c.registry.get_version("failure", first["version"])
    assert version.params["learning_rate"] == pytest.approx(first["best_params"]["learning_rate"])

    second = tune(c, service, dataset_id=data, n_trials=2, study_name="lab")
    assert second["trials"] == 5 and second["job_trials"] == 2
    assert second["best_value"] >= first["best_value"]
    assert numbers(service.study_summary("lab")) == [0, 1, 2, 3, 4]

    other = tune(c, service, dataset_id=data, n_trials=1, study_name="lab-2", register_best=False)
    assert other["warm_started"] == 1 and other["version"] is None
    (trial,) = service.study_summary("lab-2")["trials"]
    assert trial["params"] == second["best_params"]

    # one MLflow parent run per job, a child run per trial
    client = c.model_registry.client
    experiment = c.model_registry.experiment_id()
    parents = client.search_runs([experiment], "tags.`learnloop.study` = 'lab'")
    children = [r for r in parents if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) - len(children) == 2 and len(children) == 5
    assert children[0].data.metrics["value"] > 0.5

    # Optuna's tables beside ours leave learnloop's checks and migrations working
    db = Database(c.settings.database_url)
    try:
        assert db.check() is not None
        assert db.migrate()[1] == db.head()
        assert db.check() == db.head() and db.is_current()
    finally:
        db.dispose()


def test_median_pruner_stops_trials_in_a_bad_region(tuning, ai4i_sample):
    c, service = tuning
    space = {"learning_rate": {"type": "float", "low": 1e-5, "high": 0.3, "log": True}}
    result = tune(
        c,
        service,
        dataset_id=dataset(c, ai4i_sample),
        space=space,
        params={**BASE, "checkpoint_every": 4},
        metric="log_loss",
        n_trials=8,
        register_best=False,
    )
    assert result["direction"] == "minimize"
    assert result["pruned"] >= 1
    pruned = [t for t in service.study_summary(result["study"])["trials"] if t["state"] == "PRUNED"]
    assert all(t["params"]["learning_rate"] < 0.01 for t in pruned)
    assert all(len(t["intermediate"]) < 5 for t in pruned)


def test_sqlite_runs_two_workers_one_writer_at_a_time(tuning, ai4i_sample):
    c, service = tuning
    result = tune(c, service, dataset_id=dataset(c, ai4i_sample), n_trials=6, workers=2)
    summary = service.study_summary(result["study"])
    assert sum(summary["states"].values()) == 6 and "FAIL" not in summary["states"]
    assert numbers(summary) == list(range(6))


@pytest.mark.slow
def test_postgres_two_jobs_with_two_workers_share_a_study(tmp_path, ai4i_sample):
    require_postgres()
    with postgres_schema() as url:
        c, service = open_container(tmp_path / "home", url)
        try:
            data = dataset(c, ai4i_sample)
            jobs = [submit(c, service, dataset_id=data, n_trials=4, workers=2) for _ in range(2)]
            results = [wait(c, job, threads=2) for job in jobs]
            summary = service.study_summary("failure-tabular")
        finally:
            c.close()
    assert {r["study"] for r in results} == {"failure-tabular"}
    assert sum(summary["states"].values()) == 8 and "FAIL" not in summary["states"]
    assert numbers(summary) == list(range(8))


def test_bad_space_names_the_field(tuning, ai4i_sample):
    c, service = tuning
    data = dataset(c, ai4i_sample)
    cases = {
        "space.learning_rate.low": {"learning_rate": {"type": "float", "low": 0.5, "high": 0.1}},
        "space.num_leaves.low": {"num_leaves": {"type": "int", "low": 1, "high": 8}},
        "space.bogus": {"bogus": {"type": "int", "low": 1, "high": 8}},
        "space.estimator.choices": {"estimator": {"type": "categorical", "choices": []}},
        "space.max_depth.type": {"max_depth": {"type": "integer", "low": 1, "high": 8}},
    }
    for loc, space in cases.items():
        with pytest.raises(InvalidInput) as caught:
            submit(c, service, dataset_id=data, space=space)
        assert loc in [i.loc for i in caught.value.issues], caught.value.issues


@pytest.mark.slow
def test_ray_tune_search_returns_the_same_summary(tuning, ai4i_sample):
    ray = pytest.importorskip("ray")
    c, optuna_service = tuning
    service = TuningService(
        c.families,
        c.datasets,
        c.registry,
        database_url=c.settings.database_url,
        ray_address="local",
    )
    c.job_handlers = {**c.job_handlers, "tune": service.run_job}  # type: ignore[misc]
    try:
        result = tune(c, service, dataset_id=dataset(c, ai4i_sample), n_trials=3, workers=2)
    finally:
        ray.shutdown()
    assert result["backend"] == "ray" and result["trials"] == 3
    assert 0.5 < result["best_value"] <= 1.0 and set(result["best_params"]) == set(SPACE)
    assert c.registry.resolve("failure", "challenger") == result["version"]
    summary = optuna_service.study_summary(result["study"])
    assert summary["best_value"] == result["best_value"] and numbers(summary) == [0, 1, 2]


def test_knowledge_tracing_searches_its_default_space(tuning) -> None:
    """The family's built-in space and metric (validation AUC) drive a real search."""
    from learnloop.families.knowledge_tracing import (
        KnowledgeTracingParams,
        generate_synthetic_data,
    )
    from learnloop.loop.tuning import default_space

    space = default_space("knowledge_tracing")
    for name, spec in space.items():  # every corner of the space is a valid param
        values = spec.get("choices") or [spec["low"], spec["high"]]
        for value in values:
            KnowledgeTracingParams(**{name: int(value) if spec["type"] == "int" else value})
    c, service = tuning
    frame = generate_synthetic_data(120, num_items=10, num_skills=2, attempts=10, seed=4)
    params = {"model": "dkt", "epochs": 2, "embed_dim": 8, "threads": 1}
    record = c.datasets.import_frame(
        frame.interactions.drop(columns=["p_true"]), family="knowledge_tracing",
        params=params, name="sim", source="test", actor="test",
    )  # fmt: skip
    small = {k: v for k, v in space.items() if k in ("learning_rate", "dropout")}
    summary = tune(
        c, service, family="knowledge_tracing", model="kt-tune", dataset_id=record.id,
        params=params, space=small, n_trials=2,
    )  # fmt: skip
    assert summary["metric"] == "auc" and summary["direction"] == "maximize"
    assert summary["trials"] == 2
    assert 0 < summary["best_value"] <= 1

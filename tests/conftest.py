"""Shared fixtures: settings on a temp home, SQLite/PostgreSQL databases, the AI4I data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from learnloop.container import Container
from learnloop.settings import Settings
from learnloop.storage.sql.database import Database
from learnloop.testing.databases import postgres_schema, postgres_unavailable

ROOT = Path(__file__).resolve().parents[1]
AI4I = ROOT.parent / "shared/datasets/predictive-maintenance/ai4i2020/ai4i2020.csv"
LEAKS = ["TWF", "HDF", "PWF", "OSF", "RNF"]

_pg_reason: list[str | None] = []


def pg_reason() -> str | None:
    if not _pg_reason:
        _pg_reason.append(postgres_unavailable())
    return _pg_reason[0]


def require_postgres() -> None:
    reason = pg_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but PostgreSQL is unavailable: {reason}")
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


def pytest_report_header(config: pytest.Config) -> str:
    reason = pg_reason()
    return "postgresql: " + ("available" if reason is None else f"UNAVAILABLE ({reason})")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'learnloop.db'}"
    else:
        require_postgres()
        with postgres_schema() as url:
            yield url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


def fast_settings(home: Path, **overrides: object) -> Settings:
    env = {
        "home": home,
        "jobs": {
            "workers": 1,
            "poll_interval_s": 0.05,
            "heartbeat_interval_s": 0.2,
            "heartbeat_timeout_s": 2.0,
        },
        "logging": {"level": "WARNING"},
    }
    env.update(overrides)
    return Settings(**env)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return fast_settings(tmp_path / "home")


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    c = Container(settings).open()
    yield c
    c.close()


@pytest.fixture(scope="session")
def ai4i() -> pd.DataFrame:
    return pd.read_csv(AI4I, encoding="utf-8-sig")


@pytest.fixture(scope="session")
def ai4i_sample(ai4i: pd.DataFrame) -> pd.DataFrame:
    """2,000 rows, stratified on the target, fixed seed."""
    parts = [g.sample(frac=0.2, random_state=0) for _, g in ai4i.groupby("Machine failure")]
    return pd.concat(parts).sort_values("UDI").reset_index(drop=True)


def train_version(
    c: Container,
    frame: pd.DataFrame,
    model: str = "failure",
    alias: str | None = None,
    **params: object,
) -> str:
    """Train one real version through a ``train`` job; return its version number."""
    from learnloop.loop.training import TrainRequest

    full = {"target": "Machine failure", "drop_columns": LEAKS, "n_estimators": 20, **params}
    dataset = c.datasets.import_frame(
        frame, family="tabular", params=full, name="ai4i", source="test", actor="test"
    )
    request = c.training.validate(
        TrainRequest(family="tabular", model=model, dataset_id=dataset.id, params=full, alias=alias)
    )
    job = c.jobs.submit("train", request.model_dump(), actor="test")
    c.start_workers(1)
    done = c.jobs.wait(job.id, 180)
    assert done.status.value == "succeeded", done.error
    return str(done.result["version"])  # type: ignore[index]

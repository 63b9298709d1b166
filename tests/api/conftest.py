"""Fixtures of the API tests: the real app over a real container, one trained model, one key
per role.

``served`` is built once per session (an MLflow store and a training run cost seconds): a
``tabular`` model ``failure`` trained on the AI4I sample through a real ``train`` job, with
``champion`` on version 1, and the app running in-process under ``TestClient`` (lifespan
included). Tests that move aliases use their own alias names, or say what they leave behind.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from learnloop.api.app import create_app
from learnloop.container import Container
from learnloop.core.auth import Role
from learnloop.core.records import JobStatus
from learnloop.loop.training import TrainRequest
from tests.conftest import LEAKS, fast_settings

MODEL = "failure"
TARGET = "Machine failure"
TORQUE = "Torque [Nm]"


@pytest.fixture(scope="session")
def train_params() -> dict[str, Any]:
    return {"target": TARGET, "drop_columns": LEAKS, "n_estimators": 30}


@dataclass(frozen=True)
class Served:
    """The running app and what the session fixture made in it."""

    container: Container
    client: TestClient
    model: str
    dataset_id: str
    train_job_id: str
    tokens: dict[Role, str]
    key_names: dict[Role, str]
    rows: list[dict[str, Any]]

    @property
    def home(self) -> Path:
        return self.container.settings.home

    def auth(self, role: Role = Role.ADMIN) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture(scope="session")
def served(
    tmp_path_factory: pytest.TempPathFactory,
    ai4i_sample: pd.DataFrame,
    train_params: dict[str, Any],
) -> Iterator[Served]:
    container = Container(fast_settings(tmp_path_factory.mktemp("api-home"))).open()
    try:
        dataset = container.datasets.import_frame(
            ai4i_sample,
            family="tabular",
            params={"target": TARGET},
            name="ai4i",
            source="test",
            actor="test",
        )
        request = container.training.validate(
            TrainRequest(
                family="tabular",
                model=MODEL,
                dataset_id=dataset.id,
                params=train_params,
                alias="champion",
            )
        )
        job = container.jobs.submit("train", request.model_dump(), actor="test")
        container.start_workers(1)
        done = container.jobs.wait(job.id, 120)
        assert done.status is JobStatus.SUCCEEDED, done.error
        tokens: dict[Role, str] = {}
        names: dict[Role, str] = {}
        for role in Role:
            record, token = container.keys.create(role, f"{role.value}-key", actor="test")
            tokens[role], names[role] = token, record.name
        features = ai4i_sample.drop(columns=[TARGET, *LEAKS]).head(5)
        rows = json.loads(features.to_json(orient="records"))
        with TestClient(create_app(container, workers=True)) as client:
            yield Served(container, client, MODEL, dataset.id, job.id, tokens, names, rows)
    finally:
        container.close()


@pytest.fixture
def bare_client(tmp_path: Path) -> Callable[..., AbstractContextManager[TestClient]]:
    """Factory: an app over a fresh, empty home with ``api`` settings overridden."""

    @contextmanager
    def make(**api: Any) -> Iterator[TestClient]:
        settings = fast_settings(tmp_path / "bare-home", api=api)
        with TestClient(create_app(Container(settings), workers=False)) as client:
            yield client

    return make

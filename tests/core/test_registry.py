"""Registry through MLflow: versions with lineage, aliases with history, rollback, pyfunc."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import mlflow
import pandas as pd
import pytest

from learnloop.container import Container
from learnloop.core.errors import Conflict, InvalidInput, NotFound
from learnloop.core.registry import RegistryService
from learnloop.storage.sql.stores import SqlAliasHistory
from tests.conftest import fast_settings, train_version


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    """One home for the module: training three versions once keeps the file fast; each test
    moves its own alias names so tests stay independent."""
    c = Container(fast_settings(tmp_path_factory.mktemp("registry") / "home")).open()
    yield c
    c.close()


@pytest.fixture(scope="module")
def three_versions(container: Container, ai4i_sample: pd.DataFrame) -> list[str]:
    return [
        train_version(container, ai4i_sample, seed=s, n_estimators=10 + s, checkpoint_every=5)
        for s in range(3)
    ]


def test_versions_carry_params_metrics_dataset_and_code_version(
    container: Container, three_versions: list[str]
) -> None:
    assert three_versions == ["1", "2", "3"]
    v = container.registry.get_version("failure", "2")
    assert v.family == "tabular" and v.params["n_estimators"] == 11 and v.params["seed"] == 1
    assert v.dataset_id and v.dataset_id.startswith("ds-")
    assert 0.5 < v.metrics["roc_auc"] <= 1.0
    assert v.code_version == __import__("learnloop").__version__
    run = container.model_registry.client.get_run(v.run_id)
    assert run.data.params["n_estimators"] == "11"
    assert run.data.params["dataset_id"] == v.dataset_id
    assert "final_roc_auc" in run.data.metrics and "train_seconds" in run.data.metrics
    steps = container.model_registry.client.get_metric_history(v.run_id, "roc_auc")
    assert len(steps) >= 2  # a learning curve, one point per checkpoint chunk
    assert [m.name for m in container.registry.list_models()] == ["failure"]


def test_alias_moves_are_recorded_and_answer_point_in_time(
    container: Container, three_versions: list[str]
) -> None:
    reg = container.registry
    reg.set_alias("failure", "champ1", "1", actor="alice", reason="first")
    time.sleep(0.02)
    between = datetime.now(UTC)
    time.sleep(0.02)
    reg.set_alias("failure", "champ1", "2", actor="bob", reason="better auc")
    assert reg.resolve("failure", "champ1") == "2"
    assert reg.version_at("failure", "champ1", between) == "1"
    history = reg.alias_history("failure", "champ1")
    assert [(e.actor, e.from_version, e.to_version, e.reason) for e in history] == [
        ("alice", None, "1", "first"),
        ("bob", "1", "2", "better auc"),
    ]
    audit = [a for a in container.audit.list(action="alias.set") if a.detail["alias"] == "champ1"]
    assert [dict(a.detail)["to"] for a in audit] == ["2", "1"]


def test_rollback_walks_back_through_previous_versions(
    container: Container, three_versions: list[str]
) -> None:
    reg = container.registry
    for v in ("1", "2", "3"):
        reg.set_alias("failure", "champ2", v, actor="t")
    assert reg.rollback("failure", "champ2", actor="t").to_version == "2"
    assert reg.rollback("failure", "champ2", actor="t").to_version == "1"
    assert reg.resolve("failure", "champ2") == "1"
    with pytest.raises(Conflict, match="no earlier version"):
        reg.rollback("failure", "champ2", actor="t")
    reg.set_alias("failure", "champ2", "3", actor="t")
    assert reg.rollback("failure", "champ2", actor="t").to_version == "1"
    actions = [e.action for e in reg.alias_history("failure", "champ2")]
    assert actions == ["set", "set", "set", "rollback", "rollback", "set", "rollback"]


def test_bad_alias_requests_leave_the_alias_alone(
    container: Container, three_versions: list[str]
) -> None:
    reg = container.registry
    reg.set_alias("failure", "champ3", "1", actor="t")
    with pytest.raises(NotFound, match="failure/9"):
        reg.set_alias("failure", "champ3", "9", actor="t")
    with pytest.raises(InvalidInput, match="alias"):
        reg.set_alias("failure", "bad alias!", "1", actor="t")
    with pytest.raises(NotFound, match="nope"):
        reg.set_alias("nope", "champ3", "1", actor="t")
    with pytest.raises(NotFound, match="failure@staging"):
        reg.resolve("failure", "staging")
    assert reg.resolve("failure", "champ3") == "1"
    assert len(reg.alias_history("failure", "champ3")) == 1


def test_a_model_stays_bound_to_its_family(container: Container, three_versions: list[str]) -> None:
    with pytest.raises(Conflict, match="tabular"):
        container.registry.ensure_model("failure", "other", actor="t")


def test_version_loads_as_mlflow_pyfunc_and_matches_serving(
    container: Container, three_versions: list[str], ai4i_sample: pd.DataFrame
) -> None:
    container.registry.set_alias("failure", "champ5", "3", actor="t")
    rows = ai4i_sample.drop(columns=["Machine failure", *["TWF", "HDF", "PWF", "OSF", "RNF"]])
    rows = rows.head(25)
    mlflow.set_tracking_uri(container.settings.tracking_uri)
    pyfunc = mlflow.pyfunc.load_model("models:/failure@champ5")
    via_mlflow = pyfunc.predict(rows)
    via_service = container.serving.predict(
        "failure", rows.to_dict(orient="records"), alias="champ5"
    )
    assert via_service.version == "3"
    assert list(via_mlflow["prediction"]) == [o["prediction"] for o in via_service.outputs]
    for a, b in zip(via_mlflow["probabilities"], via_service.outputs, strict=True):
        assert a == pytest.approx(b["probabilities"])


def test_alias_move_is_seen_by_prediction_at_once(
    container: Container, three_versions: list[str], ai4i_sample: pd.DataFrame
) -> None:
    row = ai4i_sample.drop(columns=["Machine failure"]).head(1).to_dict(orient="records")
    container.registry.set_alias("failure", "champ6", "1", actor="t")
    assert container.serving.predict("failure", row, alias="champ6").version == "1"
    container.registry.set_alias("failure", "champ6", "2", actor="t")
    assert container.serving.predict("failure", row, alias="champ6").version == "2"


class _RacedRegistry:
    """The real MLflow registry, except that the first read of a model lets another writer
    create it just before answering 'not found' — the window two jobs hit when both register
    the first version of one model at once."""

    def __init__(self, real: object, rival_family: str) -> None:
        self._real = real
        self._rival_family = rival_family
        self.raced = False

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    def get_model(self, name: str) -> object:
        if not self.raced:
            self.raced = True
            self._real.create_model(name, self._rival_family, "")  # type: ignore[attr-defined]
            raise NotFound("model", name)
        return self._real.get_model(name)  # type: ignore[attr-defined]


@pytest.mark.parametrize("rival_family", ["tabular", "other"])
def test_ensure_model_survives_a_concurrent_create(container: Container, rival_family: str) -> None:
    name = f"raced-{rival_family}"
    raced = _RacedRegistry(container.model_registry, rival_family)
    service = RegistryService(raced, SqlAliasHistory(container.db), container.audit)  # type: ignore[arg-type]
    if rival_family == "tabular":
        record = service.ensure_model(name, "tabular", actor="t")
        assert (record.name, record.family) == (name, "tabular")
    else:
        with pytest.raises(Conflict, match="bound to family 'other'"):
            service.ensure_model(name, "tabular", actor="t")
    assert raced.raced
    assert container.registry.get_model(name).family == rival_family


def test_set_alias_survives_a_concurrent_first_set(
    container: Container, three_versions: list[str]
) -> None:
    """Two writers set a new alias at once: MLflow reads "no such alias" for both, both insert,
    and the second insert hits the unique key. The rival's insert is forced into that window
    (after our read, before our flush) from another thread; our write must still land."""
    from mlflow.store.model_registry.dbmodels.models import SqlRegisteredModelAlias
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    fired: list[bool] = []

    def rival_first(session: Session, *_: object) -> None:
        ours = [
            o for o in session.new if isinstance(o, SqlRegisteredModelAlias) and o.alias == "raced"
        ]
        if not ours or fired:
            return
        fired.append(True)
        rival = threading.Thread(
            target=container.model_registry.client.set_registered_model_alias,
            args=("failure", "raced", "3"),
        )
        rival.start()
        rival.join(30)
        assert not rival.is_alive()

    event.listen(Session, "before_flush", rival_first)
    try:
        container.registry.set_alias("failure", "raced", "2", actor="t")
    finally:
        event.remove(Session, "before_flush", rival_first)
    assert fired, "the rival write never ran inside the window"
    assert container.model_registry.resolve_alias("failure", "raced") == "2"
    assert container.registry.current("failure", "raced") == "2"

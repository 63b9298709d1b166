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
from learnloop.core.errors import Conflict, InvalidInput, NotFound, StorageError
from learnloop.core.records import AliasEvent
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


# -- alias moves: one chain per alias, no-ops, rollback, divergence ---------------------------


def assert_chain(events: list[AliasEvent]) -> None:
    """Each event moves from where the previous one left the alias; ids and times increase;
    no event leaves the alias where it was."""
    head: str | None = None
    for i, event in enumerate(events):
        assert event.from_version == head, f"event {i} does not chain: {events}"
        assert event.from_version != event.to_version, f"event {i} is a no-op: {events}"
        if i:
            assert events[i - 1].id < event.id and events[i - 1].at < event.at, events
        head = event.to_version


def test_concurrent_alias_moves_form_one_chain(
    container: Container, three_versions: list[str]
) -> None:
    """Twenty writers move one alias at once through the service (real MLflow, real SQLite):
    every event's ``from`` is the previous event's ``to``, only the first starts from nothing,
    and the registry ends where the history says."""
    reg = container.registry
    start = threading.Barrier(20)
    errors: list[BaseException] = []

    def move(i: int) -> None:
        try:
            start.wait(30)
            reg.set_alias("failure", "racing", three_versions[i % 3], actor=f"w{i}")
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=move, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    events = reg.alias_history("failure", "racing")
    assert events and [e.from_version for e in events].count(None) == 1
    assert_chain(events)
    assert reg.resolve("failure", "racing") == events[-1].to_version
    audited = [a for a in container.audit.list(action="alias.set") if a.detail["alias"] == "racing"]
    assert sorted(a.detail["to"] for a in audited) == sorted(e.to_version for e in events)


def test_setting_the_current_version_is_a_no_op(
    container: Container, three_versions: list[str]
) -> None:
    reg = container.registry
    first = reg.set_alias("failure", "steady", "1", actor="alice", reason="first")
    again = reg.set_alias("failure", "steady", "1", actor="bob", reason="again")
    assert again == first  # the alias's latest event, unchanged
    assert [e.id for e in reg.alias_history("failure", "steady")] == [first.id]
    audited = [
        a for a in container.audit.list(target="model:failure") if a.detail.get("alias") == "steady"
    ]
    assert [a.actor for a in audited] == ["alice"]
    with pytest.raises(Conflict, match="no earlier version"):
        reg.rollback("failure", "steady", actor="t")
    assert reg.resolve("failure", "steady") == "1"


def test_rollback_with_nothing_to_return_to_is_a_conflict(
    container: Container, three_versions: list[str]
) -> None:
    reg = container.registry
    with pytest.raises(Conflict, match="failure@unset"):
        reg.rollback("failure", "unset", actor="t")
    reg.set_alias("failure", "champ7", "1", actor="t")
    reg.set_alias("failure", "champ7", "2", actor="t")
    reg.delete_alias("failure", "champ7", actor="t")
    with pytest.raises(Conflict, match="no earlier version"):
        reg.rollback("failure", "champ7", actor="t")  # unset
    reg.set_alias("failure", "champ7", "3", actor="t")
    with pytest.raises(Conflict, match="it points to version 3"):
        reg.rollback("failure", "champ7", actor="t")  # a delete starts the stack over
    reg.set_alias("failure", "champ7", "1", actor="t")
    assert reg.rollback("failure", "champ7", actor="t").to_version == "3"
    events = reg.alias_history("failure", "champ7")
    assert [(e.action, e.to_version) for e in events] == [
        ("set", "1"),
        ("set", "2"),
        ("delete", None),
        ("set", "3"),
        ("set", "1"),
        ("rollback", "3"),
    ]
    assert_chain(events)


def test_an_alias_moved_outside_learnloop_is_recorded_before_the_next_move(
    container: Container, three_versions: list[str]
) -> None:
    """MLflow holds the pointer: a move made there directly (or one whose history commit was
    lost) shows up as a ``sync`` event, so the chain stays true instead of jumping."""
    reg = container.registry
    reg.set_alias("failure", "drifted", "1", actor="t")
    container.model_registry.set_alias("failure", "drifted", "2")
    event = reg.set_alias("failure", "drifted", "3", actor="t")
    assert (event.from_version, event.to_version) == ("2", "3")
    events = reg.alias_history("failure", "drifted")
    assert [(e.action, e.actor, e.to_version) for e in events] == [
        ("set", "t", "1"),
        ("sync", "registry", "2"),
        ("set", "t", "3"),
    ]
    assert_chain(events)
    assert reg.rollback("failure", "drifted", actor="t").to_version == "2"


class _FailingAliasWrites:
    """The real MLflow registry, except that setting an alias fails."""

    def __init__(self, real: object) -> None:
        self._real = real

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    def set_alias(self, model: str, alias: str, version: str) -> None:
        raise StorageError("registry unavailable")


def test_a_failed_registry_write_leaves_no_event(
    container: Container, three_versions: list[str]
) -> None:
    container.registry.set_alias("failure", "champ8", "1", actor="t")
    failing = RegistryService(
        _FailingAliasWrites(container.model_registry),  # type: ignore[arg-type]
        SqlAliasHistory(container.db),
        container.audit,
    )
    with pytest.raises(StorageError, match="unavailable"):
        failing.set_alias("failure", "champ8", "2", actor="t")
    assert [e.to_version for e in container.registry.alias_history("failure", "champ8")] == ["1"]
    assert container.registry.resolve("failure", "champ8") == "1"


def test_a_delete_guard_refuses_with_its_reason(
    container: Container, three_versions: list[str]
) -> None:
    service = RegistryService(
        container.model_registry, SqlAliasHistory(container.db), container.audit
    )
    service.add_delete_guard(lambda model, alias: "in use" if alias == "guarded" else None)
    service.set_alias("failure", "guarded", "1", actor="t")
    service.set_alias("failure", "free", "1", actor="t")
    with pytest.raises(Conflict, match="in use"):
        service.delete_alias("failure", "guarded", actor="t")
    assert service.resolve("failure", "guarded") == "1"
    deleted = service.delete_alias("failure", "free", actor="t")
    assert (deleted.action, deleted.from_version, deleted.to_version) == ("delete", "1", None)
    assert service.current("failure", "free") is None

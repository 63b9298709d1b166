"""Erasure reaches every store, on SQLite and PostgreSQL: afterwards each store is searched for
the subject and nothing is found; models trained on its data are flagged; the audit log holds a
tombstone without the id."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from learnloop.container import Container
from learnloop.core.cache import cache_key, input_hash
from learnloop.core.deployments import parse_spec
from learnloop.core.errors import Conflict
from learnloop.core.feedback import FeedbackIn
from learnloop.loop.training import TrainRequest
from tests.conftest import LEAKS, fast_settings

SUBJECT = "cust-0007"


@pytest.fixture
def world(
    database_url: str, tmp_path: Path, ai4i_sample: pd.DataFrame
) -> Iterator[tuple[Container, str, str, list[str], dict]]:
    c = Container(fast_settings(tmp_path / "home", database={"url": database_url})).open()
    try:
        frame = ai4i_sample.head(600).copy()
        frame["customer"] = [f"cust-{i % 40:04d}" for i in range(len(frame))]
        params = {
            "target": "Machine failure",
            "drop_columns": [*LEAKS, "customer"],
            "n_estimators": 10,
        }
        ds = c.datasets.import_frame(
            frame,
            family="tabular",
            params=params,
            name="ai4i-customers",
            source="test",
            actor="test",
            subject_column="customer",
        )
        request = c.training.validate(
            TrainRequest(
                family="tabular", model="gdpr", dataset_id=ds.id, params=params, alias="champion"
            )
        )
        job = c.jobs.submit("train", request.model_dump(), actor="test")
        c.start_workers(1)
        assert c.jobs.wait(job.id, 120).status.value == "succeeded"
        rows = json.loads(
            frame.drop(columns=["Machine failure", *LEAKS, "customer"])
            .head(3)
            .to_json(orient="records")
        )
        spec = {
            "mode": "single",
            "arms": [{"name": "main", "alias": "champion", "weight": 100}],
            "cache": {"enabled": True, "ttl_s": 600},
        }
        c.deployments.apply("gdpr", parse_spec(spec), actor="test", reason="cache on")
        served = c.serving.predict("gdpr", rows, subject_id=SUBJECT)
        c.serving.predict("gdpr", rows, subject_id=SUBJECT)  # cached answers now exist
        c.serving.predict("gdpr", rows[:1], subject_id="someone-else")
        c.feedback.ingest(
            [
                FeedbackIn(type="label", value=1, prediction_id=served.prediction_ids[0]),
                FeedbackIn(type="rating", value=2, subject_id=SUBJECT, text="slow answer"),
                FeedbackIn(type="click", subject_id="someone-else"),
            ]
        )
        assert c.ledger is not None and c.ledger.flush(10)
        c.sensitive.put_many({SUBJECT: {"region": "north"}, "someone-else": {"region": "south"}})
        c.active_learning.queue.add(
            "gdpr", "uncertainty", [(served.prediction_ids[1], SUBJECT, 0.9)]
        )
        yield c, ds.id, served.version, served.prediction_ids, rows[0]
    finally:
        c.close()


def search_sql(c: Container, needle: str) -> dict[str, int]:
    """Count rows of every ledger-side table whose any column mentions ``needle``."""
    found = {}
    with c.db.engine.connect() as conn:
        for table in ("predictions", "feedback", "label_tasks", "sensitive_attributes"):
            rows = conn.execute(sa.text(f"SELECT * FROM {table}")).all()
            found[table] = sum(1 for r in rows if any(needle in str(v) for v in r))
    return found


def test_forget_reaches_every_store(world) -> None:  # type: ignore[no-untyped-def]
    c, dataset_id, version, pids, row = world
    assert search_sql(c, SUBJECT)["predictions"] >= 6
    export = c.subjects.export(SUBJECT)
    assert {p["id"] for p in export["predictions"]} >= set(pids)
    assert len(export["feedback"]) == 2 and len(export["label_tasks"]) == 1
    assert export["sensitive_attributes"] == [
        {"subject_id": SUBJECT, "attributes": {"region": "north"}}
    ]
    assert export["datasets"][0]["dataset"] == dataset_id
    assert all(r["customer"] == SUBJECT for r in export["datasets"][0]["rows"])
    generation = c.response_cache.generation("gdpr")
    key = cache_key("gdpr", generation, version, input_hash(row))
    assert c.response_cache.get(key) is not None

    report = c.subjects.forget(SUBJECT, actor="dpo")

    assert report["predictions"] >= 6 and report["feedback"] == 2 and report["label_tasks"] == 1
    assert report["sensitive_attributes"] == 1
    assert c.sensitive.get_many([SUBJECT, "someone-else"]) == {"someone-else": {"region": "south"}}
    # every store, searched for the subject
    assert search_sql(c, SUBJECT) == {
        "predictions": 0,
        "feedback": 0,
        "label_tasks": 0,
        "sensitive_attributes": 0,
    }
    assert c.subjects.find(SUBJECT) == {
        "predictions": 0,
        "feedback": 0,
        "label_tasks": 0,
        "dataset_rows": 0,
        "sensitive_attributes": 0,
    }
    # others are untouched
    assert search_sql(c, "someone-else")["predictions"] == 1
    assert search_sql(c, "someone-else")["feedback"] == 1
    # datasets: a successor without the subject, the old snapshot marked and its data deleted
    (erased,) = report["datasets"]
    assert erased["dataset"] == dataset_id and erased["rows"] == 15
    successor = erased["superseded_by"]
    new = c.datasets.load(successor)
    assert SUBJECT not in set(new["customer"]) and len(new) == 600 - 15
    old = c.datasets.get(dataset_id)
    assert old.manifest["erased"]["superseded_by"] == successor
    assert not Path(old.path).exists()
    with pytest.raises(Conflict, match=successor):
        c.datasets.load(dataset_id)
    for path in c.settings.datasets_dir.rglob("*.parquet"):
        frame = pd.read_parquet(path)
        assert not frame.astype(str).isin([SUBJECT]).any().any(), path
    # the cache holds no answer for the subject's inputs any more
    assert c.response_cache.get(key) is None
    assert c.response_cache.generation("gdpr") == generation + 1
    # models trained on the subject's data are flagged
    assert report["retrain_required"] == [{"model": "gdpr", "version": version}]
    flagged = c.registry.get_version("gdpr", version)
    assert flagged.retrain_required and report["tombstone"] in flagged.retrain_required
    # the audit tombstone proves the erasure without holding the id
    events = [e for e in c.audit.list(limit=50) if e.action == "subject.erase"]
    assert len(events) == 1 and events[0].target == f"subject:{report['tombstone']}"
    assert SUBJECT not in json.dumps(events[0].detail)
    assert c.subjects.tombstone(SUBJECT) == report["tombstone"]
    # erasing again finds nothing and is harmless
    again = c.subjects.forget(SUBJECT, actor="dpo")
    assert again["predictions"] == 0 and again["datasets"] == []


def test_erasure_api_and_cli(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from learnloop.api.app import create_app
    from learnloop.core.auth import Role

    c, *_ = world
    _, admin = c.keys.create(Role.ADMIN, "dpo", actor="test")
    _, operator = c.keys.create(Role.OPERATOR, "ops", actor="test")
    with TestClient(create_app(c, workers=False)) as client:
        h = {"Authorization": f"Bearer {admin}"}
        assert (
            client.delete(
                f"/v1/subjects/{SUBJECT}", headers={"Authorization": f"Bearer {operator}"}
            ).status_code
            == 403
        )
        assert client.get(f"/v1/subjects/{SUBJECT}/export", headers=h).json()["predictions"]
        r = client.delete(f"/v1/subjects/{SUBJECT}", headers=h)
        assert r.status_code == 200, r.text
        assert client.get(f"/v1/subjects/{SUBJECT}", headers=h).json()["found"]["predictions"] == 0
        export = client.get(f"/v1/subjects/{SUBJECT}/export", headers=h).json()
        assert export["predictions"] == [] and export["feedback"] == [] and export["datasets"] == []
    assert datetime.now(UTC)  # the run finished inside the fixture's lifetime

"""Drift monitoring over the real app: a model's served window against its training snapshot,
before and after a shift in the incoming traffic; stored reports (JSON, HTML) and alerts."""

from __future__ import annotations

import json

import pandas as pd

from learnloop.core.auth import Role
from tests.api.conftest import TARGET, Served
from tests.conftest import LEAKS, train_version

MODEL = "drift-watch"


def serve(served: Served, frame: pd.DataFrame, subject: str) -> list[str]:
    rows = json.loads(frame.drop(columns=[TARGET, *LEAKS]).to_json(orient="records"))
    ids: list[str] = []
    for i in range(0, len(rows), 100):
        r = served.client.post(
            f"/v1/models/{MODEL}/predict",
            json={"inputs": rows[i : i + 100], "subject_id": subject},
            headers=served.auth(),
        )
        assert r.status_code == 200, r.text
        ids += r.json()["prediction_ids"]
    return ids


def test_drift_monitor_against_training(served: Served, ai4i: pd.DataFrame) -> None:
    c = served.container
    # AI4I is in time order and its temperatures wander: shuffle so that the windows below
    # really come from the training distribution
    rows = ai4i.sample(frac=1.0, random_state=0).reset_index(drop=True)
    train_version(c, rows.iloc[:3000], model=MODEL, alias="champion")
    fresh = rows.iloc[3000:3600]
    serve(served, fresh, "steady")
    h = served.auth(Role.OPERATOR)
    calm = served.client.post("/v1/drift/monitor", json={"model": MODEL, "window": "1h"}, headers=h)
    assert calm.status_code == 200, calm.text
    summary = calm.json()["summary"]
    assert summary["rows"] == {"reference": 3000, "current": 600}
    assert summary["data_drift"] is False and summary["drifted_columns"] == []

    shifted = rows.iloc[3600:4200].copy()
    shifted["Torque [Nm]"] += 15.0
    ids = serve(served, shifted, "shifted")
    events = [
        {"type": "label", "value": int(y), "prediction_id": pid}
        for pid, y in zip(ids, shifted[TARGET], strict=True)
    ]
    served.client.post("/v1/feedback/batch", json={"events": events}, headers=served.auth())
    hot = served.client.post("/v1/drift/monitor", json={"model": MODEL, "window": "1h"}, headers=h)
    body = hot.json()["summary"]
    assert "Torque [Nm]" in body["drifted_columns"], body
    assert body["drift"] is True and body["concept_drift"]["labelled"] == 600

    stored = served.client.get(f"/v1/drift/report/{MODEL}", headers=served.auth(Role.READER))
    assert stored.status_code == 200 and stored.json()["id"] == hot.json()["id"]
    column = stored.json()["report"]["data"]["columns"]["Torque [Nm]"]
    assert column["drift"] is True and column["p_value"] < 1e-6
    page = served.client.get(
        f"/v1/drift/report/{MODEL}", params={"format": "html"}, headers=served.auth()
    )
    assert page.status_code == 200 and "Torque [Nm]" in page.text and "<svg" in page.text
    listed = served.client.get(f"/v1/drift/reports/{MODEL}", headers=served.auth()).json()
    assert [r["verdict"] for r in listed] == [True, False]
    alerts = served.client.get(
        "/v1/alerts", params={"model": MODEL, "kind": "drift"}, headers=served.auth()
    ).json()
    assert len(alerts) == 1 and "Torque" in alerts[0]["message"]


def test_drift_monitor_errors(served: Served) -> None:
    h = served.auth()
    r = served.client.post("/v1/drift/monitor", json={"model": "nope"}, headers=h)
    assert r.status_code == 404
    r = served.client.post(
        "/v1/drift/monitor", json={"model": served.model, "window": "soon"}, headers=h
    )
    assert r.status_code == 422
    r = served.client.get("/v1/drift/report/never-monitored", headers=h)
    assert r.status_code == 404

"""Analytics over the real app: learning curves from MLflow, versions side by side, segments,
retraining ROI."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from learnloop.core.auth import Role
from tests.api.conftest import TARGET, Served
from tests.conftest import LEAKS, train_version

MODEL = "analytics"


def test_analytics(served: Served, ai4i_sample: pd.DataFrame) -> None:
    c = served.container
    train_version(c, ai4i_sample, model=MODEL, alias="champion", n_estimators=10)
    train_version(c, ai4i_sample, model=MODEL, alias="champion", n_estimators=40)
    frame = ai4i_sample.iloc[:300]
    rows = json.loads(frame.drop(columns=[TARGET, *LEAKS]).to_json(orient="records"))
    r = served.client.post(
        f"/v1/models/{MODEL}/predict",
        json={"inputs": rows, "version": "2"},
        headers=served.auth(),
    ).json()
    events = [
        {"type": "label", "value": int(y), "prediction_id": p}
        for p, y in zip(r["prediction_ids"], frame[TARGET], strict=True)
    ]
    served.client.post("/v1/feedback/batch", json={"events": events}, headers=served.auth())
    h = served.auth(Role.READER)

    curves = served.client.get(f"/v1/analytics/{MODEL}/learning-curves", headers=h).json()
    assert [v["version"] for v in curves["versions"]] == ["1", "2"]
    second = curves["versions"][1]["curves"]
    assert second and max(len(points) for points in second.values()) >= 2

    compare = served.client.get(f"/v1/analytics/{MODEL}/compare", headers=h).json()
    v1, v2 = compare["versions"]
    assert v2["online"]["labelled"] == 300 and 0.5 < v2["online"]["accuracy"] <= 1.0
    assert v2["latency_ms"]["requests"] == 300 and v2["latency_ms"]["p99"] > 0
    assert v1["latency_ms"]["requests"] == 0 and v1["online"]["labelled"] == 0
    assert v2["size_bytes"] > v1["size_bytes"] > 0  # 40 trees weigh more than 10
    assert v2["train_seconds"] > 0 and "roc_auc" in v2["validation"]

    seg = served.client.get(
        f"/v1/analytics/{MODEL}/segments", params={"by": "Type"}, headers=h
    ).json()
    assert {s["segment"] for s in seg["segments"]} == set(frame["Type"])
    assert sum(s["count"] for s in seg["segments"]) == 300
    binned = served.client.get(
        f"/v1/analytics/{MODEL}/segments", params={"by": "Torque [Nm]", "bins": 4}, headers=h
    ).json()
    assert len(binned["segments"]) == 4
    bad = served.client.get(f"/v1/analytics/{MODEL}/segments", params={"by": "nope"}, headers=h)
    assert bad.status_code == 422

    roi = served.client.get(
        f"/v1/analytics/{MODEL}/roi",
        params={"metric": "roc_auc", "value_per_point": 100, "cost_per_hour": 2},
        headers=h,
    ).json()
    first, latest = roi["versions"]
    assert "gain" not in first
    assert latest["gain"] == round(latest["roc_auc"] - first["roc_auc"], 6)
    assert latest["cost"] > 0
    assert latest["value"] == pytest.approx(latest["gain"] / 0.01 * 100, abs=0.01)
    assert latest["roi"] == pytest.approx(latest["value"] / latest["cost"], rel=0.05)
    missing = served.client.get(
        f"/v1/analytics/{MODEL}/compare", params={"versions": "9"}, headers=h
    )
    assert missing.status_code == 422

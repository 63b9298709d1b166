"""Explanations, global importance, the sensitive-attribute store and bias detection over the
real app."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from learnloop.core.auth import Role
from tests.api.conftest import TARGET, Served
from tests.conftest import LEAKS


def test_explain_shap_lime_and_importance(served: Served) -> None:
    r = served.client.post(
        f"/v1/models/{served.model}/explain",
        json={"inputs": served.rows[:2]},
        headers=served.auth(Role.INGEST),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["method"] == "shap" and body["explainer"] == "tree" and body["version"] == "1"
    for row in body["rows"]:
        assert "Torque [Nm]" in row["attributions"] and "Type" in row["attributions"]
        assert row["sum_check"]["abs_error"] < 1e-4
    lime = served.client.post(
        f"/v1/models/{served.model}/explain",
        json={"inputs": served.rows[:1], "method": "lime", "seed": 1},
        headers=served.auth(),
    )
    assert lime.status_code == 200, lime.text
    assert lime.json()["rows"][0]["feature_weights"]
    imp = served.client.get(
        f"/v1/models/{served.model}/importance", params={"rows": 300}, headers=served.auth()
    ).json()
    top3 = {f["feature"] for f in imp["importance"][:3]}
    assert top3 & {"Torque [Nm]", "Rotational speed [rpm]", "Tool wear [min]"}
    bad = served.client.post(
        f"/v1/models/{served.model}/explain",
        json={"inputs": [{"Type": "L"}]},
        headers=served.auth(),
    )
    assert bad.status_code == 422 and "inputs[0]" in bad.text


def test_bias_detect_joins_sensitive_attributes(served: Served, ai4i_sample: pd.DataFrame) -> None:
    c = served.container
    frame = ai4i_sample.iloc[:800].copy()
    frame["machine"] = frame["Product ID"]
    ds = c.datasets.import_frame(
        frame,
        family="tabular",
        params={"target": TARGET, "drop_columns": [*LEAKS, "machine"]},
        name="bias-eval",
        source="test",
        actor="test",
        subject_column="machine",
    )
    # a sensitive attribute the model never sees: the site each machine runs at
    sites = {m: ("north" if i % 3 else "south") for i, m in enumerate(frame["machine"])}
    records = [{"subject_id": m, "attributes": {"site": s}} for m, s in sites.items()]
    denied = served.client.put(
        "/v1/sensitive-attributes", json={"records": records}, headers=served.auth(Role.OPERATOR)
    )
    assert denied.status_code == 403
    r = served.client.put(
        "/v1/sensitive-attributes", json={"records": records}, headers=served.auth(Role.ADMIN)
    )
    assert r.status_code == 200 and r.json()["stored"] == len(sites)
    body = {
        "model": served.model,
        "dataset_id": ds.id,
        "attributes": ["site"],
        "bounds": {"demographic_parity_difference": 0.5},
        "n_boot": 100,
    }
    rep = served.client.post("/v1/bias/detect", json=body, headers=served.auth(Role.OPERATOR))
    assert rep.status_code == 200, rep.text
    out = rep.json()
    assert out["joined"] == {"rows": 800, "with_attributes": 800}
    site = out["attributes"]["site"]
    groups = site["groups"]
    assert set(groups) == {"north", "south"}
    assert sum(g["count"] for g in groups.values()) == 800
    dpd = site["metrics"]["demographic_parity_difference"]["value"]
    rates = [g["selection_rate"] for g in groups.values()]
    assert dpd == pytest.approx(max(rates) - min(rates))
    assert out["passed"] is True and math.isfinite(dpd)
    missing = served.client.post(
        "/v1/bias/detect", json={**body, "attributes": ["religion"]}, headers=served.auth()
    )
    assert missing.status_code == 422 and "attributes.religion" in missing.text

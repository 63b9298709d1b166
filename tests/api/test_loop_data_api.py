"""Datasets from the loop over the real app: labelled predictions → a time-split snapshot with
k-anonymity and l-diversity (checked by pycanon), validation report, lineage; training on it;
DP releases against a budget; a synthetic snapshot; confidence and error patterns."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from pycanon import anonymity

from learnloop.core.auth import Role
from tests.api.conftest import TARGET, Served
from tests.conftest import LEAKS

QI = ["Type", "Air temperature [K]"]


@pytest.fixture(scope="module")
def labelled(served: Served, ai4i_sample: pd.DataFrame) -> dict[str, Any]:
    """240 predictions in 8 requests (distinct times), each labelled with the true outcome."""
    start = datetime.now(UTC)
    frame = ai4i_sample.iloc[:240]
    features = json.loads(frame.drop(columns=[TARGET, *LEAKS]).to_json(orient="records"))
    truth = frame[TARGET].tolist()
    ids: list[str] = []
    for chunk in range(8):
        part = slice(chunk * 30, (chunk + 1) * 30)
        r = served.client.post(
            f"/v1/models/{served.model}/predict",
            json={"inputs": features[part], "subject_id": f"loop-user-{chunk}"},
            headers=served.auth(),
        )
        assert r.status_code == 200, r.text
        ids += r.json()["prediction_ids"]
        time.sleep(0.01)
    events = [
        {"type": "label", "value": int(y), "prediction_id": pid}
        for pid, y in zip(ids, truth, strict=True)
    ]
    r = served.client.post("/v1/feedback/batch", json={"events": events}, headers=served.auth())
    assert r.status_code == 201 and r.json()["accepted"] == 240
    return {"since": start.isoformat(), "ids": ids}


def build(served: Served, since: str, **privacy: Any) -> Any:
    body: dict[str, Any] = {"model": served.model, "since": since, "valid_fraction": 0.25}
    if privacy:
        body["privacy"] = privacy
    return served.client.post("/v1/datasets/from-feedback", json=body, headers=served.auth())


def test_dataset_from_feedback_is_time_split_with_lineage(served: Served, labelled: dict) -> None:
    r = build(served, labelled["since"])
    assert r.status_code == 201, r.text
    ds, report = r.json()["dataset"], r.json()["validation"]
    assert ds["rows"] == 240 and ds["subject_column"] == "subject_id"
    frame = served.container.datasets.load(ds["id"])
    train, valid = frame[frame["split"] == "train"], frame[frame["split"] == "valid"]
    assert len(valid) == 60 and len(train) == 180
    assert train["predicted_at"].max() < valid["predicted_at"].min()  # no leakage across time
    assert report["split"] == {"train": 180, "valid": 60}
    assert set(report["label_balance"]) == {"train", "valid"}
    assert "train_serve_skew" in report and TORQUE_OR_ANY(report["train_serve_skew"])
    lineage = served.container.datasets.lineage(ds["id"])
    assert lineage is not None and set(lineage["prediction_id"]) == set(labelled["ids"])
    manifest = ds["manifest"]["lineage"]
    assert manifest["predictions"] == 240 and manifest["feedback_events"] == 240
    assert ds["manifest"]["params"]["split_column"] == "split"


def TORQUE_OR_ANY(skew: dict[str, Any]) -> bool:
    return any(v["metric"] in ("psi", "tvd") for v in skew.values())


def test_k_anonymity_and_l_diversity_verified_by_pycanon(served: Served, labelled: dict) -> None:
    r = build(
        served,
        labelled["since"],
        quasi_identifiers=QI,
        k=5,
        l=2,
        sensitive=["Tool wear [min]"],
        max_suppression=0.1,
    )
    assert r.status_code == 201, r.text
    ds = r.json()["dataset"]
    frame = served.container.datasets.load(ds["id"])
    assert anonymity.k_anonymity(frame, QI) >= 5
    assert anonymity.l_diversity(frame, QI, ["Tool wear [min]"]) >= 2
    privacy = ds["manifest"]["privacy"]
    assert privacy["k"] >= 5 and privacy["suppressed"] == 240 - len(frame)
    assert privacy["suppressed"] <= 24


def test_bad_privacy_spec_is_422(served: Served, labelled: dict) -> None:
    r = build(served, labelled["since"], quasi_identifiers=["nope"], k=5)
    assert r.status_code == 422
    assert r.json()["error"]["issues"][0]["loc"] == "privacy.quasi_identifiers"
    r = build(served, labelled["since"], k=5)
    assert r.status_code == 422


def test_training_uses_the_time_split(served: Served, labelled: dict) -> None:
    ds = build(served, labelled["since"]).json()["dataset"]
    r = served.client.post(
        "/v1/jobs",
        json={
            "kind": "train",
            "payload": {
                "family": "tabular",
                "model": "loop-retrain",
                "dataset_id": ds["id"],
                "params": {**ds["manifest"]["params"], "n_estimators": 10},
            },
        },
        headers=served.auth(),
    )
    assert r.status_code in (200, 201, 202), r.text
    done = served.container.jobs.wait(r.json()["id"], 120)
    assert done.status.value == "succeeded", done.error
    version = served.container.registry.get_version("loop-retrain", str(done.result["version"]))
    assert version.dataset_id == ds["id"]


def test_dp_release_charges_the_budget(served: Served, labelled: dict) -> None:
    ds = build(served, labelled["since"]).json()["dataset"]
    url = f"/v1/datasets/{ds['id']}/dp-release"
    body = {
        "epsilon_total": 1.0,
        "seed": 3,
        "queries": [
            {"kind": "count", "epsilon": 0.3},
            {"kind": "mean", "column": "Torque [Nm]", "bounds": [0, 80], "epsilon": 0.3},
        ],
    }
    r = served.client.post(url, json=body, headers=served.auth())
    assert r.status_code == 200, r.text
    out = r.json()
    count = out["answers"][0]
    assert abs(count["value"] - 240) < 60 and count["noise_scale"] == pytest.approx(1 / 0.3)
    assert out["budget"]["spent_epsilon"] == pytest.approx(0.6)
    again = served.client.post(url, json=body, headers=served.auth())
    assert again.status_code == 409  # 0.6 more would exceed 1.0: nothing is spent
    budget = served.client.get(f"/v1/datasets/{ds['id']}/privacy-budget", headers=served.auth())
    assert budget.json()["spent_epsilon"] == pytest.approx(0.6)
    bad = served.client.post(
        url,
        json={"queries": [{"kind": "sum", "column": "nope", "bounds": [0, 1]}]},
        headers=served.auth(),
    )
    assert bad.status_code == 422


def test_synthetic_snapshot_job(served: Served) -> None:
    r = served.client.post(
        f"/v1/datasets/{served.dataset_id}/synthesize",
        json={"rows": 500, "seed": 1},
        headers=served.auth(),
    )
    assert r.status_code == 202, r.text
    done = served.container.jobs.wait(r.json()["job_id"], 120)
    assert done.status.value == "succeeded", done.error
    ds = served.client.get(
        f"/v1/datasets/{done.result['dataset_id']}", headers=served.auth()
    ).json()
    assert ds["synthetic"] is True and ds["rows"] == 500
    assert ds["manifest"]["lineage"]["source"] == served.dataset_id
    fidelity = ds["manifest"]["fidelity"]
    assert 0.5 < fidelity["column_shape_score"] <= 1.0
    assert 0.0 <= fidelity["discriminator_auc"] <= 1.0
    aug = served.client.post(
        f"/v1/datasets/{served.dataset_id}/synthesize",
        json={"augment_target": TARGET, "min_fraction": 0.2, "method": "smote"},
        headers=served.auth(),
    )
    done = served.container.jobs.wait(aug.json()["job_id"], 120)
    assert done.status.value == "succeeded", done.error
    extra = served.container.datasets.load(done.result["dataset_id"])
    added = extra[extra["_synthetic"]]
    assert (added[TARGET] == 1).all() and len(added) > 100  # only rare-class rows are added
    assert (extra[TARGET] == 1).mean() == pytest.approx(0.2, abs=0.01)


def test_confidence_and_error_patterns(served: Served, labelled: dict) -> None:
    r = served.client.get(
        f"/v1/models/{served.model}/confidence",
        params={"window": "1h", "bucket": "1h"},
        headers=served.auth(Role.READER),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["predictions"] >= 240 and body["buckets"][0]["count"] >= 1
    assert sum(body["buckets"][0]["histogram"]) == body["buckets"][0]["count"]
    # Buckets are aligned to the clock: a run that crosses an hour boundary splits the module's
    # predictions into two buckets of different inputs, a real shift. One wide bucket keeps
    # "the same predictions raise no alert" independent of the time the suite runs.
    check = served.client.post(
        f"/v1/models/{served.model}/confidence/check",
        params={"window": "1h", "bucket": "2w"},
        headers=served.auth(Role.OPERATOR),
    )
    assert check.status_code == 200, check.text
    assert check.json()["alert_raised"] is False and len(check.json()["buckets"]) == 1
    p = served.client.get(
        f"/v1/models/{served.model}/error-patterns",
        params={"min_support": 2},
        headers=served.auth(Role.READER),
    )
    assert p.status_code == 200, p.text
    assert p.json()["examples"] >= 240
    assert (
        served.client.get(
            "/v1/models/no-such-model/error-patterns", headers=served.auth()
        ).status_code
        == 404
    )

"""Deployment routes over HTTP: apply, refuse bad specs (old one keeps serving), promote,
roll back, the served_by/prediction_ids of predict, the ledger and the shadow report."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import pytest

from learnloop.core.auth import Role
from tests.api.conftest import Served
from tests.conftest import train_version

MODEL = "dep"


@pytest.fixture(scope="module")
def dep(served: Served, ai4i_sample: pd.DataFrame) -> Served:
    for seed in (1, 2):
        train_version(served.container, ai4i_sample, model=MODEL, seed=seed)
    served.container.registry.set_alias(MODEL, "champion", "1", actor="test")
    return served


def put(s: Served, body: dict[str, Any], role: Role = Role.OPERATOR) -> Any:
    return s.client.put(f"/v1/models/{MODEL}/deployment", json=body, headers=s.auth(role))


def predict(s: Served, subject: str | None = None) -> Any:
    body: dict[str, Any] = {"inputs": s.rows[:2]}
    if subject:
        body["subject_id"] = subject
    r = s.client.post(f"/v1/models/{MODEL}/predict", json=body, headers=s.auth(Role.INGEST))
    assert r.status_code == 200, r.text
    return r.json()


def test_implicit_deployment_then_canary_promotion_to_the_end(dep: Served) -> None:
    r = dep.client.get(f"/v1/models/{MODEL}/deployment", headers=dep.auth(Role.READER))
    assert r.status_code == 200 and r.json()["revision"] == 0
    assert r.json()["spec"]["arms"][0]["alias"] == "champion"
    body = predict(dep, "user-1")
    assert body["version"] == "1" and body["arm"] == "champion"
    assert len(body["prediction_ids"]) == 2 and body["served_by"]["fallback"] is False

    canary = {
        "mode": "canary",
        "arms": [{"name": "stable", "alias": "champion"}, {"name": "cand", "version": "2"}],
        "canary": {"candidate": "cand", "steps": [10, 50, 100]},
        "reason": "try v2",
    }
    r = put(dep, canary)
    assert r.status_code == 200, r.text
    assert r.json()["revision"] == 1 and r.json()["reason"] == "try v2"
    arms = {predict(dep, f"u{i}")["arm"] for i in range(60)}
    assert arms == {"stable", "cand"}
    shares = []
    for _ in range(2):
        r = dep.client.post(f"/v1/models/{MODEL}/deployment/promote", headers=dep.auth())
        assert r.status_code == 200
        shares.append(r.json()["spec"]["canary"]["step"] if r.json()["spec"]["canary"] else None)
    assert shares == [1, 2]
    r = dep.client.post(f"/v1/models/{MODEL}/deployment/promote", headers=dep.auth())
    assert r.json()["spec"]["mode"] == "single" and r.json()["revision"] == 4
    assert {predict(dep, f"u{i}")["version"] for i in range(10)} == {"2"}
    r = dep.client.post(f"/v1/models/{MODEL}/deployment/rollback", headers=dep.auth())
    assert r.status_code == 200 and r.json()["spec"]["mode"] == "canary"
    history = dep.client.get(f"/v1/models/{MODEL}/deployment/history", headers=dep.auth())
    assert [d["revision"] for d in history.json()] == [1, 2, 3, 4, 5]
    salts = {d["spec"]["salt"] for d in history.json()}
    assert len(salts) == 1 and None not in salts  # subjects keep their arms across revisions
    audit = dep.client.get("/v1/audit", params={"action": "deployment.promote"}, headers=dep.auth())
    assert len(audit.json()) == 3


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (
            {
                "mode": "ab",
                "arms": [
                    {"name": "a", "version": "1", "weight": 70},
                    {"name": "b", "version": "2", "weight": 20},
                ],
            },
            "body",
        ),
        (
            {
                "mode": "ab",
                "arms": [
                    {"name": "a", "version": "1", "weight": 50},
                    {"name": "b", "version": "42", "weight": 50},
                ],
            },
            "arms[1].version",
        ),
        ({"mode": "single", "arms": [{"name": "a", "alias": "nope"}]}, "arms[0].alias"),
    ],
)
def test_a_bad_deployment_is_422_and_the_old_one_keeps_serving(
    dep: Served, body: dict[str, Any], loc: str
) -> None:
    before = dep.client.get(f"/v1/models/{MODEL}/deployment", headers=dep.auth()).json()
    r = put(dep, body)
    assert r.status_code == 422
    assert any(i["loc"].startswith(loc) for i in r.json()["error"]["issues"]), r.json()
    after = dep.client.get(f"/v1/models/{MODEL}/deployment", headers=dep.auth()).json()
    assert after["revision"] == before["revision"]
    predict(dep)


def test_stale_expected_revision_is_a_conflict(dep: Served) -> None:
    current = dep.client.get(f"/v1/models/{MODEL}/deployment", headers=dep.auth()).json()
    body = {
        "mode": "single",
        "arms": [{"name": "c", "alias": "champion"}],
        "expected_revision": current["revision"] - 1,
    }
    assert put(dep, body).status_code == 409


def test_readers_and_ingest_keys_cannot_change_deployments(dep: Served) -> None:
    body = {"mode": "single", "arms": [{"name": "c", "alias": "champion"}]}
    assert put(dep, body, Role.READER).status_code == 403
    assert put(dep, body, Role.INGEST).status_code == 403


def test_shadow_report_and_ledger_over_http(dep: Served) -> None:
    body = {
        "mode": "shadow",
        "arms": [{"name": "main", "version": "1"}, {"name": "shadow", "version": "2"}],
        "shadow": {"arm": "shadow", "fraction": 1.0},
    }
    assert put(dep, body).status_code == 200
    served = [predict(dep, f"s{i}") for i in range(5)]
    assert {b["version"] for b in served} == {"1"}
    deadline = time.monotonic() + 10
    report: dict[str, Any] = {}
    while time.monotonic() < deadline:
        report = dep.client.get(f"/v1/models/{MODEL}/shadow-report", headers=dep.auth()).json()
        if report["pairs"] >= 10:
            break
        time.sleep(0.1)
    assert report["pairs"] >= 10 and 0 <= report["agreement"] <= 1
    assert report["versions"] == {"1->2": report["pairs"]}
    pid = served[0]["prediction_ids"][0]
    r = dep.client.get(f"/v1/predictions/{pid}", headers=dep.auth(Role.READER))
    assert r.status_code == 200 and r.json()["version"] == "1" and r.json()["subject_id"] == "s0"
    assert dep.client.get("/v1/predictions/nope", headers=dep.auth()).status_code == 404
    listed = dep.client.get(
        f"/v1/models/{MODEL}/predictions", params={"shadow": True}, headers=dep.auth()
    ).json()
    assert listed and all(p["shadow_of"] for p in listed)

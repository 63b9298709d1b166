"""The /v1 routes over the real app: bad input answered precisely, and the happy paths."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from learnloop.core.auth import Role
from tests.api.conftest import TARGET, TORQUE, Served


def issue_locs(response: Any) -> list[str]:
    return [i["loc"] for i in response.json()["error"]["issues"]]


def wait_for_job(served: Served, job_id: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job = served.client.get(f"/v1/jobs/{job_id}", headers=served.auth(Role.READER))
        assert job.status_code == 200
        body = job.json()
        if body["status"] in ("succeeded", "failed", "cancelled", "paused"):
            return body
        assert time.monotonic() < deadline, f"job {job_id} still {body['status']}"
        time.sleep(0.1)


def job_count(served: Served) -> int:
    response = served.client.get("/v1/jobs", params={"limit": 1000}, headers=served.auth())
    assert response.status_code == 200
    return len(response.json())


@pytest.fixture(scope="module")
def second_version(served: Served, train_params: dict[str, Any]) -> dict[str, Any]:
    """Version 2 of the model, trained through POST /v1/jobs (no alias moved)."""
    payload = {
        "family": "tabular",
        "model": served.model,
        "dataset_id": served.dataset_id,
        "params": {**train_params, "seed": 1},
    }
    submitted = served.client.post(
        "/v1/jobs", json={"kind": "train", "payload": payload}, headers=served.auth(Role.OPERATOR)
    )
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    assert job["status"] == "queued"
    assert job["submitted_by"] == served.key_names[Role.OPERATOR]
    done = wait_for_job(served, job["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["result"]["version"] == "2"
    return done


# -- not found ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/no-such-model",
        "/v1/models/no-such-model/versions",
        "/v1/models/no-such-model/aliases/history",
        "/v1/models/no-such-model/aliases/champion",
    ],
)
def test_an_unknown_model_is_404_naming_it(served: Served, path: str) -> None:
    response = served.client.get(path, headers=served.auth(Role.READER))
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "NotFound"
    assert error["message"] == "model 'no-such-model' not found"


def test_predicting_with_an_unknown_model_is_404_naming_it(served: Served) -> None:
    response = served.client.post(
        "/v1/models/no-such-model/predict", json={"inputs": served.rows[:1]}, headers=served.auth()
    )
    assert response.status_code == 404
    assert "no-such-model" in response.json()["error"]["message"]


def test_an_unknown_version_is_404_naming_it(served: Served) -> None:
    response = served.client.get(
        f"/v1/models/{served.model}/versions/99", headers=served.auth(Role.READER)
    )
    assert response.status_code == 404
    assert f"{served.model}/99" in response.json()["error"]["message"]
    predict = served.client.post(
        f"/v1/models/{served.model}/predict",
        json={"inputs": served.rows[:1], "version": "99"},
        headers=served.auth(),
    )
    assert predict.status_code == 404
    assert f"{served.model}/99" in predict.json()["error"]["message"]


def test_an_unknown_alias_is_404_naming_it(served: Served) -> None:
    predict = served.client.post(
        f"/v1/models/{served.model}/predict",
        json={"inputs": served.rows[:1], "alias": "nosuchalias"},
        headers=served.auth(),
    )
    assert predict.status_code == 404
    assert f"{served.model}@nosuchalias" in predict.json()["error"]["message"]
    delete = served.client.delete(
        f"/v1/models/{served.model}/aliases/nosuchalias", headers=served.auth()
    )
    assert delete.status_code == 404
    assert f"{served.model}@nosuchalias" in delete.json()["error"]["message"]
    where = served.client.get(
        f"/v1/models/{served.model}/aliases/nosuchalias", headers=served.auth(Role.READER)
    )
    assert where.status_code == 404
    assert f"{served.model}@nosuchalias" in where.json()["error"]["message"]


def test_an_unknown_job_is_404(served: Served) -> None:
    for path in ("/v1/jobs/nosuchjob", "/v1/jobs/nosuchjob/events"):
        response = served.client.get(path, headers=served.auth())
        assert response.status_code == 404
        assert "nosuchjob" in response.json()["error"]["message"]


# -- predict --------------------------------------------------------------------------------


def test_predict_answers_the_champion_with_probabilities(served: Served) -> None:
    response = served.client.post(
        f"/v1/models/{served.model}/predict",
        json={"inputs": served.rows},
        headers=served.auth(Role.INGEST),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == served.model
    assert body["version"] == "1"
    assert len(body["outputs"]) == len(served.rows)
    for output in body["outputs"]:
        probabilities = output["probabilities"]
        assert set(probabilities) == {"0", "1"}
        assert sum(probabilities.values()) == pytest.approx(1.0)
        assert str(output["prediction"]) == max(probabilities, key=probabilities.get)


def test_predict_names_the_alias_it_served(served: Served) -> None:
    explicit = served.client.post(
        f"/v1/models/{served.model}/predict",
        json={"inputs": served.rows[:1], "alias": "champion"},
        headers=served.auth(),
    )
    assert explicit.json()["alias"] == "champion"
    pinned = served.client.post(
        f"/v1/models/{served.model}/predict",
        json={"inputs": served.rows[:1], "version": "1", "alias": "champion"},
        headers=served.auth(),
    )
    assert (pinned.json()["version"], pinned.json()["alias"]) == ("1", None)


def test_predict_without_an_alias_reports_the_default_champion(served: Served) -> None:
    response = served.client.post(
        f"/v1/models/{served.model}/predict",
        json={"inputs": served.rows[:1]},
        headers=served.auth(),
    )
    assert response.status_code == 200
    assert response.json()["alias"] == "champion"


def test_predict_with_a_missing_feature_is_422_naming_it(served: Served) -> None:
    row = {k: v for k, v in served.rows[0].items() if k != TORQUE}
    response = served.client.post(
        f"/v1/models/{served.model}/predict",
        json={"inputs": [served.rows[1], row]},
        headers=served.auth(),
    )
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "InvalidInput"
    assert issue_locs(response) == [f"inputs[1].{TORQUE}"]
    only = served.client.post(
        f"/v1/models/{served.model}/predict", json={"inputs": [row]}, headers=served.auth()
    )
    assert issue_locs(only) == [f"inputs[0].{TORQUE}"]


def test_predict_with_a_wrong_value_type_is_422_naming_the_feature(served: Served) -> None:
    row = {**served.rows[0], TORQUE: "strong"}
    response = served.client.post(
        f"/v1/models/{served.model}/predict", json={"inputs": [row]}, headers=served.auth()
    )
    assert response.status_code == 422
    assert issue_locs(response) == [f"inputs[0].{TORQUE}"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"inputs": {"Type": "L"}}, "body.inputs"),
        ({"inputs": []}, "body.inputs"),
        ({}, "body.inputs"),
        ({"inputs": [{}], "extra": 1}, "body.extra"),
    ],
    ids=["not-a-list", "empty", "missing", "unknown-field"],
)
def test_a_malformed_predict_body_is_422_naming_the_field(
    served: Served, body: dict[str, Any], loc: str
) -> None:
    response = served.client.post(
        f"/v1/models/{served.model}/predict", json=body, headers=served.auth()
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "InvalidInput"
    assert loc in [i["loc"] for i in error["issues"]]
    assert loc in error["message"]


def test_a_body_that_is_not_json_is_422(served: Served) -> None:
    response = served.client.post(
        f"/v1/models/{served.model}/predict",
        content=b"{not json",
        headers={**served.auth(), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["issues"][0]["loc"].startswith("body")


# -- aliases --------------------------------------------------------------------------------


def test_setting_an_alias_is_recorded_with_actor_and_reason(served: Served) -> None:
    response = served.client.put(
        f"/v1/models/{served.model}/aliases/staging",
        json={"version": "1", "reason": "smoke test passed"},
        headers=served.auth(Role.OPERATOR),
    )
    assert response.status_code == 200, response.text
    event = response.json()
    assert (event["alias"], event["action"], event["to_version"]) == ("staging", "set", "1")

    history = served.client.get(
        f"/v1/models/{served.model}/aliases/history",
        params={"alias": "staging"},
        headers=served.auth(Role.READER),
    )
    assert history.status_code == 200
    last = history.json()[-1]
    assert last["id"] == event["id"]
    assert last["actor"] == served.key_names[Role.OPERATOR]
    assert last["reason"] == "smoke test passed"
    assert {e["alias"] for e in history.json()} == {"staging"}
    model = served.client.get(f"/v1/models/{served.model}", headers=served.auth(Role.READER))
    assert model.json()["aliases"]["staging"] == "1"


def test_an_invalid_alias_name_is_422(served: Served) -> None:
    response = served.client.put(
        f"/v1/models/{served.model}/aliases/9lives", json={"version": "1"}, headers=served.auth()
    )
    assert response.status_code == 422
    assert issue_locs(response) == ["path.alias"]


def test_rollback_and_alias_at_a_point_in_time(
    served: Served, second_version: dict[str, Any]
) -> None:
    client, model, writer = served.client, served.model, served.auth(Role.OPERATOR)
    before = client.get(f"/v1/models/{model}/aliases/champion", headers=writer).json()
    assert before["version"] == "1"

    moved = client.put(
        f"/v1/models/{model}/aliases/champion",
        json={"version": "2", "reason": "better"},
        headers=writer,
    )
    assert moved.status_code == 200
    assert (moved.json()["from_version"], moved.json()["to_version"]) == ("1", "2")
    predicted = client.post(
        f"/v1/models/{model}/predict", json={"inputs": served.rows[:1]}, headers=writer
    )
    assert predicted.json()["version"] == "2"  # the move drops the cached alias at once
    time.sleep(0.05)

    back = client.post(
        f"/v1/models/{model}/aliases/champion/rollback",
        json={"reason": "regressed"},
        headers=writer,
    )
    assert back.status_code == 200, back.text
    rolled = back.json()
    assert (rolled["action"], rolled["from_version"], rolled["to_version"]) == (
        "rollback",
        "2",
        "1",
    )
    assert rolled["reason"] == "regressed"
    now = client.get(f"/v1/models/{model}/aliases/champion", headers=writer).json()
    assert now["version"] == "1"

    moved_at = datetime.fromisoformat(moved.json()["at"])
    rolled_at = datetime.fromisoformat(rolled["at"])
    assert moved_at < rolled_at
    between = moved_at + (rolled_at - moved_at) / 2
    expected = {
        moved_at - (rolled_at - moved_at): "1",
        between: "2",
        rolled_at + (rolled_at - moved_at): "1",
    }
    for at, version in expected.items():
        answer = client.get(
            f"/v1/models/{model}/aliases/champion",
            params={"at": at.isoformat()},
            headers=served.auth(Role.READER),
        )
        assert answer.status_code == 200
        assert answer.json()["version"] == version, at


def test_rollback_without_an_earlier_version_is_409(served: Served) -> None:
    alias = "lonely"
    client = served.client
    assert (
        client.put(
            f"/v1/models/{served.model}/aliases/{alias}",
            json={"version": "1"},
            headers=served.auth(),
        ).status_code
        == 200
    )
    response = client.post(
        f"/v1/models/{served.model}/aliases/{alias}/rollback", headers=served.auth()
    )
    assert response.status_code == 409
    assert f"{served.model}@{alias}" in response.json()["error"]["message"]


def test_setting_an_alias_to_a_missing_version_is_404_and_keeps_it(served: Served) -> None:
    client, path = served.client, f"/v1/models/{served.model}/aliases/keeper"
    assert client.put(path, json={"version": "1"}, headers=served.auth()).status_code == 200
    history = client.get(
        f"/v1/models/{served.model}/aliases/history",
        params={"alias": "keeper"},
        headers=served.auth(),
    ).json()

    response = client.put(path, json={"version": "42"}, headers=served.auth())
    assert response.status_code == 404
    assert f"{served.model}/42" in response.json()["error"]["message"]
    assert client.get(path, headers=served.auth()).json()["version"] == "1"
    after = client.get(
        f"/v1/models/{served.model}/aliases/history",
        params={"alias": "keeper"},
        headers=served.auth(),
    ).json()
    assert after == history


# -- jobs -----------------------------------------------------------------------------------


def test_the_second_version_is_listed_with_its_lineage(
    served: Served, second_version: dict[str, Any]
) -> None:
    versions = served.client.get(
        f"/v1/models/{served.model}/versions", headers=served.auth(Role.READER)
    )
    assert versions.status_code == 200
    by_number = {v["version"]: v for v in versions.json()}
    assert {"1", "2"} <= set(by_number)
    v2 = by_number["2"]
    assert v2["dataset_id"] == served.dataset_id
    assert v2["run_id"] == second_version["result"]["run_id"]
    assert v2["params"]["seed"] == 1
    assert v2["metrics"]


@pytest.mark.parametrize(
    ("change", "status", "loc"),
    [
        ({"params": {"target": TARGET, "n_trees": 5}}, 422, "n_trees"),
        ({"dataset_id": "ds-0000000000000000"}, 404, None),
        ({"family": "no-such-family"}, 404, None),
        ({"model": "bad name!"}, 422, "model"),
        ({"params": {"target": TARGET, "n_estimators": "many"}}, 422, "n_estimators"),
    ],
    ids=["unknown-param", "unknown-dataset", "unknown-family", "bad-model-name", "bad-param"],
)
def test_a_bad_train_job_is_refused_before_queueing(
    served: Served, change: dict[str, Any], status: int, loc: str | None
) -> None:
    payload = {
        "family": "tabular",
        "model": served.model,
        "dataset_id": served.dataset_id,
        "params": {"target": TARGET},
        **change,
    }
    before = job_count(served)
    response = served.client.post(
        "/v1/jobs", json={"kind": "train", "payload": payload}, headers=served.auth()
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if loc is not None:
        assert any(loc in i["loc"] for i in error["issues"]), error
    else:
        assert str(next(iter(change.values()))) in error["message"]
    assert job_count(served) == before


@pytest.mark.parametrize(
    ("payload", "loc"),
    [({"surprise": True}, "surprise"), ({"dataset_id": None}, "dataset_id")],
    ids=["unknown-key", "missing-field"],
)
def test_a_malformed_train_payload_is_422_before_queueing(
    served: Served, payload: dict[str, Any], loc: str
) -> None:
    body = {
        "family": "tabular",
        "model": served.model,
        "dataset_id": served.dataset_id,
        "params": {"target": TARGET},
        **payload,
    }
    body = {k: v for k, v in body.items() if v is not None}
    before = job_count(served)
    # A client that answers a server error as a 500 instead of raising it here.
    client = TestClient(served.client.app, raise_server_exceptions=False)
    response = client.post(
        "/v1/jobs", json={"kind": "train", "payload": body}, headers=served.auth()
    )
    assert job_count(served) == before
    assert response.status_code == 422, response.text
    assert any(loc in i["loc"] for i in response.json()["error"]["issues"])


def test_an_unknown_job_kind_is_422(served: Served) -> None:
    before = job_count(served)
    response = served.client.post("/v1/jobs", json={"kind": "dance"}, headers=served.auth())
    assert response.status_code == 422
    assert issue_locs(response) == ["kind"]
    assert job_count(served) == before


def test_job_events_come_in_increasing_order(served: Served) -> None:
    path = f"/v1/jobs/{served.train_job_id}/events"
    events = served.client.get(path, headers=served.auth(Role.READER))
    assert events.status_code == 200
    seqs = [e["seq"] for e in events.json()]
    assert len(seqs) >= 2
    assert seqs == sorted(set(seqs))
    later = served.client.get(path, params={"after": seqs[0]}, headers=served.auth(Role.READER))
    assert [e["seq"] for e in later.json()] == seqs[1:]


@pytest.mark.parametrize("action", ["pause", "resume", "cancel"])
def test_controlling_a_finished_job_is_409(served: Served, action: str) -> None:
    response = served.client.post(
        f"/v1/jobs/{served.train_job_id}/{action}", headers=served.auth(Role.OPERATOR)
    )
    assert response.status_code == 409
    assert response.json()["error"]["type"] == "Conflict"
    assert served.train_job_id in response.json()["error"]["message"]
    job = served.client.get(f"/v1/jobs/{served.train_job_id}", headers=served.auth()).json()
    assert job["status"] == "succeeded"
    assert job["control"] is None


def test_the_stream_sends_events_then_the_finished_job(served: Served) -> None:
    token = served.tokens[Role.READER]
    path = f"/v1/jobs/{served.train_job_id}/stream?key={token}"
    messages: list[dict[str, Any]] = []
    with served.client.websocket_connect(path) as ws:
        while not messages or messages[-1]["type"] != "job":
            messages.append(ws.receive_json())
        with pytest.raises(WebSocketDisconnect):
            ws.receive_json()  # the server closes after the final message
    *events, final = messages
    assert events and all(m["type"] == "event" for m in events)
    seqs = [m["seq"] for m in events]
    assert seqs == sorted(set(seqs))
    assert final["status"] == "succeeded"
    assert final["id"] == served.train_job_id
    assert final["result"]["version"] == "1"


def close_code(served: Served, path: str) -> int:
    """The code the server closes the WebSocket at ``path`` with: it accepts, then closes at
    once (a close before accepting reaches real clients as a bare HTTP 403)."""
    with served.client.websocket_connect(path) as ws, pytest.raises(WebSocketDisconnect) as refused:
        ws.receive_json()
    return refused.value.code


def test_the_stream_refuses_a_missing_key_and_an_unknown_job(served: Served) -> None:
    assert close_code(served, f"/v1/jobs/{served.train_job_id}/stream") == 4401
    assert close_code(served, f"/v1/jobs/{served.train_job_id}/stream?key=ll_x_garbage") == 4401
    token = served.tokens[Role.READER]
    assert close_code(served, f"/v1/jobs/nosuchjob/stream?key={token}") == 4404


def test_the_stream_refuses_a_role_without_read_as_forbidden(served: Served) -> None:
    token = served.tokens[Role.INGEST]
    assert close_code(served, f"/v1/jobs/{served.train_job_id}/stream?key={token}") == 4403


# -- datasets -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def csv_bytes(ai4i_sample: pd.DataFrame) -> bytes:
    return ai4i_sample.head(300).to_csv(index=False).encode()


def upload(served: Served, body: bytes, params: dict[str, Any], name: str = "upload") -> Any:
    return served.client.post(
        "/v1/datasets",
        params={"family": "tabular", "name": name, "params": json.dumps(params)},
        content=body,
        headers={**served.auth(Role.OPERATOR), "Content-Type": "text/csv"},
    )


def test_uploading_a_dataset_twice_gives_the_same_snapshot(
    served: Served, csv_bytes: bytes
) -> None:
    first = upload(served, csv_bytes, {"target": TARGET})
    assert first.status_code == 201, first.text
    record = first.json()
    assert record["id"].startswith("ds-")
    assert record["rows"] == 300
    assert record["family"] == "tabular"
    assert TARGET in {c["name"] for c in record["columns"]}
    again = upload(served, csv_bytes, {"target": TARGET}, name="another name")
    assert again.status_code == 201
    assert again.json()["id"] == record["id"]
    shown = served.client.get(f"/v1/datasets/{record['id']}", headers=served.auth(Role.READER))
    assert shown.status_code == 200
    assert shown.json()["content_hash"] == record["content_hash"]
    listed = served.client.get("/v1/datasets", headers=served.auth(Role.READER)).json()
    assert [d["id"] for d in listed].count(record["id"]) == 1


def test_uploading_with_a_target_that_is_not_a_column_is_422(
    served: Served, csv_bytes: bytes
) -> None:
    response = upload(served, csv_bytes, {"target": "Failure tomorrow"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "SchemaMismatch"
    assert "Failure tomorrow" in issue_locs(response)
    assert "Failure tomorrow" in error["message"]


@pytest.mark.parametrize(
    ("query", "loc"),
    [({"format": "xlsx"}, "query.format"), ({"params": "{target"}, "params")],
    ids=["unknown-format", "params-not-json"],
)
def test_a_bad_upload_query_is_422(
    served: Served, csv_bytes: bytes, query: dict[str, str], loc: str
) -> None:
    response = served.client.post(
        "/v1/datasets",
        params={"family": "tabular", "name": "bad", **query},
        content=csv_bytes,
        headers=served.auth(),
    )
    assert response.status_code == 422
    assert issue_locs(response) == [loc]


def test_an_unknown_dataset_is_404(served: Served) -> None:
    response = served.client.get("/v1/datasets/ds-nope", headers=served.auth())
    assert response.status_code == 404
    assert "ds-nope" in response.json()["error"]["message"]


# -- admin ----------------------------------------------------------------------------------


def test_the_audit_log_lists_alias_moves_and_key_creations_with_request_ids(
    served: Served,
) -> None:
    client, admin = served.client, served.auth()
    moved = client.put(
        f"/v1/models/{served.model}/aliases/audited",
        json={"version": "1"},
        headers={**served.auth(Role.OPERATOR), "X-Request-ID": "req-alias-audited"},
    )
    assert moved.status_code == 200
    created = client.post(
        "/v1/keys",
        json={"role": "reader", "name": "audited"},
        headers={**admin, "X-Request-ID": "req-key-audited"},
    )
    assert created.status_code == 201

    log = client.get("/v1/audit", params={"limit": 1000}, headers=admin)
    assert log.status_code == 200
    entries = {e["request_id"]: e for e in log.json() if e["request_id"]}
    alias_set = entries["req-alias-audited"]
    assert alias_set["action"] == "alias.set"
    assert alias_set["actor"] == served.key_names[Role.OPERATOR]
    assert alias_set["target"] == f"model:{served.model}"
    assert alias_set["detail"]["alias"] == "audited"
    key_create = entries["req-key-audited"]
    assert key_create["action"] == "key.create"
    assert key_create["target"] == f"key:{created.json()['id']}"
    assert key_create["actor"] == served.key_names[Role.ADMIN]

    only = client.get("/v1/audit", params={"action": "key.create"}, headers=admin).json()
    assert only and {e["action"] for e in only} == {"key.create"}
    ids = [e["id"] for e in log.json()]
    assert ids == sorted(ids, reverse=True)  # newest first


def test_families_lists_tabular_with_its_params_schema(served: Served) -> None:
    response = served.client.get("/v1/families", headers=served.auth(Role.READER))
    assert response.status_code == 200
    tabular = {f["name"]: f for f in response.json()}["tabular"]
    assert tabular["available"] is True
    assert "target" in tabular["params_schema"]["properties"]


def test_ready_reports_the_database_and_workers(served: Served) -> None:
    response = served.client.get("/v1/ready", headers=served.auth(Role.READER))
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["workers_in_process"] == 1

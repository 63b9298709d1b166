"""The feedback API over the real app: single events, batches, idempotency, orphans, bad input,
PII scrubbing, metrics, the labelled join, outcomes in A/B results."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from learnloop.core.auth import Role
from tests.api.conftest import Served


def predict(served: Served, subject: str, n: int = 3) -> list[str]:
    r = served.client.post(
        f"/v1/models/{served.model}/predict",
        json={"inputs": served.rows[:n], "subject_id": subject},
        headers=served.auth(),
    )
    assert r.status_code == 200, r.text
    return list(r.json()["prediction_ids"])


def send(served: Served, body: dict[str, Any], role: Role = Role.INGEST) -> Any:
    return served.client.post("/v1/feedback", json=body, headers=served.auth(role))


def test_single_event_is_acknowledged_once(served: Served) -> None:
    pid = predict(served, "fb-single")[0]
    key = f"k-{uuid.uuid4()}"
    first = send(
        served, {"type": "thumbs", "value": "up", "prediction_id": pid, "idempotency_key": key}
    )
    again = send(
        served, {"type": "thumbs", "value": "up", "prediction_id": pid, "idempotency_key": key}
    )
    assert first.status_code == 201, first.text
    assert first.json()["duplicate"] is False and first.json()["orphan"] is False
    assert again.status_code == 200 and again.json() == {**first.json(), "duplicate": True}
    stored = served.client.get(
        "/v1/feedback", params={"prediction_id": pid}, headers=served.auth(Role.READER)
    ).json()
    assert [e["id"] for e in stored] == [first.json()["id"]]
    assert stored[0]["value"] == 1.0 and stored[0]["idempotency_key"] == key


def test_unknown_prediction_is_an_orphan(served: Served) -> None:
    r = send(served, {"type": "click", "prediction_id": "no-such-prediction"})
    assert r.status_code == 201 and r.json()["orphan"] is True


def test_batch_is_all_or_nothing_with_every_bad_field(served: Served) -> None:
    subject = f"fb-batch-{uuid.uuid4()}"
    events = [
        {"type": "rating", "value": 4, "subject_id": subject},
        {"type": "rating", "value": 9, "subject_id": subject},
        {"type": "click", "subject_id": subject},
        {"type": "thumbs", "value": "up"},
        {"type": "dwell_ms", "value": 100, "subject_id": subject, "surprise": 1},
    ]
    r = served.client.post("/v1/feedback/batch", json={"events": events}, headers=served.auth())
    assert r.status_code == 422
    locs = {i["loc"] for i in r.json()["error"]["issues"]}
    assert "body.events.1.value" in locs, locs
    assert "body.events.3.subject_id" in locs, locs
    assert any(loc.startswith("body.events.4.surprise") for loc in locs), locs
    assert not any(loc.startswith(("body.events.0", "body.events.2")) for loc in locs)
    listed = served.client.get(
        "/v1/feedback", params={"subject_id": subject}, headers=served.auth()
    )
    assert listed.json() == []  # the valid events of the refused batch were not stored


def test_batch_reports_duplicates_and_orphans(served: Served) -> None:
    pids = predict(served, "fb-batch-ok", 2)
    events = [
        {"type": "label", "value": 0, "prediction_id": pids[0], "idempotency_key": "b-1"},
        {"type": "label", "value": 0, "prediction_id": pids[0], "idempotency_key": "b-1"},
        {"type": "completion", "value": 0.5, "prediction_id": pids[1]},
        {"type": "signal", "name": "scroll", "value": 3, "prediction_id": "ghost"},
    ]
    r = served.client.post("/v1/feedback/batch", json={"events": events}, headers=served.auth())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["accepted"] == 3 and body["duplicates"] == 1
    assert body["duplicate_indices"] == [1] and body["orphan_indices"] == [3]
    assert body["ids"][0] == body["ids"][1]


def test_oversized_batch_is_413(served: Served) -> None:
    limit = served.container.settings.api.max_body_bytes
    blob = "x" * 9_000
    n = limit // len(blob) + 2
    events = [{"type": "click", "subject_id": "big", "text": blob} for _ in range(n)]
    r = served.client.post("/v1/feedback/batch", json={"events": events}, headers=served.auth())
    assert r.status_code == 413


def test_roles(served: Served) -> None:
    body = {"type": "click", "subject_id": "role-test"}
    assert send(served, body, Role.READER).status_code == 403
    assert send(served, body, Role.INGEST).status_code == 201
    r = served.client.get("/v1/feedback/metrics", headers=served.auth(Role.INGEST))
    assert r.status_code == 403


def test_pii_is_scrubbed_before_storage(served: Served) -> None:
    text = "Wrong again, mail me at jane.doe@example.com or call +44 20 7946 0958"
    r = send(
        served,
        {
            "type": "thumbs",
            "value": "down",
            "subject_id": "pii",
            "text": text,
            "attributes": {"contact": "jane.doe@example.com", "plan": "pro"},
        },
    )
    assert r.status_code == 201
    stored = served.client.get(f"/v1/feedback/{r.json()['id']}", headers=served.auth()).json()
    assert "jane.doe@example.com" not in str(stored)
    assert "7946" not in stored["text"]
    assert "[EMAIL]" in stored["text"] and stored["attributes"]["plan"] == "pro"


def test_metrics_and_labelled_join(served: Served) -> None:
    subject = f"fb-metrics-{uuid.uuid4()}"
    pids = predict(served, subject, 4)
    events = [
        {"type": "rating", "value": 5, "prediction_id": pids[0]},
        {"type": "rating", "value": 2, "prediction_id": pids[1]},
        {"type": "label", "value": 1, "prediction_id": pids[2]},
        {"type": "click", "prediction_id": pids[3]},
    ]
    assert (
        served.client.post(
            "/v1/feedback/batch", json={"events": events}, headers=served.auth()
        ).status_code
        == 201
    )
    m = served.client.get(
        "/v1/feedback/metrics",
        params={"model": served.model, "window": "1h", "bucket": "5m"},
        headers=served.auth(Role.READER),
    )
    assert m.status_code == 200, m.text
    body = m.json()
    assert body["events"] >= 4 and body["by_type"]["rating"] >= 2
    arm = next(a for a in body["arms"] if a["arm"] is not None)
    assert arm["predictions"] >= 4 and "rating" in arm["types"]
    assert body["rating_distribution"][served.model]["5"] >= 1
    assert (
        served.client.get(
            "/v1/feedback/metrics", params={"window": "yesterday"}, headers=served.auth()
        ).status_code
        == 422
    )
    rows = served.client.get(
        "/v1/feedback/labelled", params={"model": served.model}, headers=served.auth(Role.READER)
    ).json()["rows"]
    mine = {r["prediction_id"]: r for r in rows if r["subject_id"] == subject}
    assert set(mine) == set(pids)
    assert mine[pids[2]]["label"] == 1 and mine[pids[2]]["label_source"] == "label"
    assert mine[pids[1]]["negative"] is True and mine[pids[1]]["label"] is None
    assert "Torque [Nm]" in mine[pids[0]]["inputs"]  # inputs are joined in
    assert mine[pids[0]]["outcomes"]["rating"] == 5.0 and mine[pids[0]]["label_at"] is None


def test_experiment_results_use_feedback_outcomes(served: Served) -> None:
    pids = predict(served, "fb-exp", 2)
    for pid in pids:
        send(served, {"type": "thumbs", "value": "up", "prediction_id": pid})
    r = served.client.get(f"/v1/experiments/{served.model}", headers=served.auth(Role.READER))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["outcome_source"] == "FeedbackOutcomes"
    assert sum(a["outcomes"] for a in body["arms"].values()) >= 2, body["arms"]


def test_a_key_reused_for_a_different_event_is_409_naming_the_key(served: Served) -> None:
    subject = f"fb-reuse-{uuid.uuid4()}"
    key = f"k-{uuid.uuid4()}"
    first = send(
        served, {"type": "rating", "value": 5, "subject_id": subject, "idempotency_key": key}
    )
    assert first.status_code == 201, first.text
    retry = send(
        served, {"type": "rating", "value": 5, "subject_id": subject, "idempotency_key": key}
    )
    assert retry.status_code == 200 and retry.json()["duplicate"] is True
    other = send(
        served, {"type": "rating", "value": 1, "subject_id": subject, "idempotency_key": key}
    )
    assert other.status_code == 409, other.text
    assert other.json()["error"]["type"] == "IdempotencyConflict"
    assert key in other.json()["error"]["message"]
    batch = served.client.post(
        "/v1/feedback/batch",
        json={
            "events": [
                {"type": "click", "subject_id": subject},
                {"type": "rating", "value": 2, "subject_id": subject, "idempotency_key": key},
            ]
        },
        headers=served.auth(Role.INGEST),
    )
    assert batch.status_code == 409, batch.text
    assert key in batch.json()["error"]["message"] and "event 1" in batch.json()["error"]["message"]
    stored = served.client.get(
        "/v1/feedback", params={"subject_id": subject}, headers=served.auth(Role.READER)
    ).json()
    assert [(e["type"], e["value"]) for e in stored] == [("rating", 5.0)]


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"subject_id": "learner\x00-1"}, "subject_id"),
        ({"model": "failure\nfake log line"}, "model"),
        ({"idempotency_key": "k\x00"}, "idempotency_key"),
        ({"text": "nul \x00 inside"}, "text"),
        ({"attributes": {"note": "x" * 1_000_000}}, "attributes"),
        ({"attributes": {f"k{i}": i for i in range(101)}}, "attributes"),
        ({"attributes": {"k" * 257: 1}}, "attributes"),
        ({"attributes": {"a\x00": 1}}, "attributes"),
        ({"type": "label", "value": "x" * 1_000_000}, "value"),
        ({"type": "label", "value": ["x" * 9_000] * 10}, "value"),
        ({"type": "signal", "name": "n", "value": 10**30}, "value"),
    ],
)
def test_oversized_or_control_character_fields_are_422_naming_them(
    served: Served, change: dict[str, Any], loc: str
) -> None:
    subject = f"fb-bounds-{uuid.uuid4()}"
    body = {"type": "click", "subject_id": subject, **change}
    r = send(served, body)
    assert r.status_code == 422, r.text
    assert [i["loc"] for i in r.json()["error"]["issues"]] == [f"body.{loc}"]
    r = served.client.post(
        "/v1/feedback/batch", json={"events": [body]}, headers=served.auth(Role.INGEST)
    )
    assert r.status_code == 422, r.text
    assert [i["loc"] for i in r.json()["error"]["issues"]] == [f"body.events.0.{loc}"]


def test_text_may_hold_line_breaks(served: Served) -> None:
    r = send(served, {"type": "click", "subject_id": f"s-{uuid.uuid4()}", "text": "a\nb\tc"})
    assert r.status_code == 201, r.text

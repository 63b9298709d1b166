"""Request ids, Prometheus metrics, the body-size limit, the error body and the docs pages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from learnloop.core.auth import Role
from tests.api.conftest import Served

LIMIT = 2048


def samples(client: TestClient, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample called ``name`` in a fresh scrape of /metrics (no key sent)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == name
    ]


def value(client: TestClient, name: str, **labels: str) -> float:
    return sum(v for found, v in samples(client, name) if labels.items() <= found.items())


def assert_error_body(response: Any, kind: str) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert set(body["error"]) == {"type", "message", "issues"}
    assert body["error"]["type"] == kind
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["issues"], list)
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


# -- request ids ----------------------------------------------------------------------------


def test_a_sent_request_id_is_echoed_and_audited(served: Served) -> None:
    rid = "obs-req-0001"
    response = served.client.post(
        "/v1/keys",
        json={"role": "reader", "name": "traced"},
        headers={**served.auth(), "X-Request-ID": rid},
    )
    assert response.status_code == 201
    assert response.headers["X-Request-ID"] == rid
    key_id = response.json()["id"]
    audit = served.client.get(
        "/v1/audit", params={"target": f"key:{key_id}"}, headers=served.auth()
    )
    assert [(e["action"], e["request_id"]) for e in audit.json()] == [("key.create", rid)]


def test_a_request_id_is_generated_when_absent(served: Served) -> None:
    first = served.client.get("/v1/health")
    second = served.client.get("/v1/health")
    assert first.headers["X-Request-ID"]
    assert second.headers["X-Request-ID"]
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
    # The generated id is the one the request was handled (and audited) under.
    created = served.client.post("/v1/keys", json={"role": "reader"}, headers=served.auth())
    rid = created.headers["X-Request-ID"]
    audit = served.client.get(
        "/v1/audit", params={"target": f"key:{created.json()['id']}"}, headers=served.auth()
    )
    assert audit.json()[0]["request_id"] == rid


def test_an_overlong_request_id_is_cut_to_64_characters(served: Served) -> None:
    response = served.client.get("/v1/health", headers={"X-Request-ID": "r" * 200})
    assert response.headers["X-Request-ID"] == "r" * 64


# -- metrics --------------------------------------------------------------------------------


def test_metrics_need_no_key(served: Served) -> None:
    response = served.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "learnloop_http_request_duration_seconds_bucket" in response.text


def test_requests_are_counted_by_route_template(served: Served) -> None:
    client, path = served.client, f"/v1/models/{served.model}/predict"
    template = "/v1/models/{name}/predict"
    before = value(client, "learnloop_http_requests_total", route=template, status="200")
    response = client.post(path, json={"inputs": served.rows[:2]}, headers=served.auth())
    assert response.status_code == 200
    after = value(client, "learnloop_http_requests_total", route=template, status="200")
    assert after == before + 1
    routes = {labels["route"] for labels, _ in samples(client, "learnloop_http_requests_total")}
    assert path not in routes
    assert {template, "/metrics"} <= routes


def test_unmatched_paths_share_one_label(served: Served) -> None:
    client = served.client
    before = value(client, "learnloop_http_requests_total", route="<unmatched>", status="404")
    for path in ("/nothing/here", "/v1/nothing/else"):
        response = client.get(path)
        assert response.status_code == 404
        assert_error_body(response, "HTTPError")
    after = value(client, "learnloop_http_requests_total", route="<unmatched>", status="404")
    assert after == before + 2
    routes = {labels["route"] for labels, _ in samples(client, "learnloop_http_requests_total")}
    assert "/nothing/here" not in routes


def test_predictions_are_counted_per_model_and_version(served: Served) -> None:
    client = served.client
    before = value(client, "learnloop_serving_items_total", model=served.model, version="1")
    response = client.post(
        f"/v1/models/{served.model}/predict",
        json={"inputs": served.rows[:3], "version": "1"},
        headers=served.auth(),
    )
    assert response.status_code == 200
    after = value(client, "learnloop_serving_items_total", model=served.model, version="1")
    assert after == before + 3
    latency = value(
        client, "learnloop_serving_latency_seconds_count", model=served.model, version="1"
    )
    assert latency >= 1


def test_jobs_are_gauged_by_status(served: Served) -> None:
    client = served.client
    gauge = {labels["status"]: v for labels, v in samples(client, "learnloop_jobs")}
    assert {"queued", "running", "succeeded", "failed", "cancelled", "paused"} <= set(gauge)
    succeeded = client.get(
        "/v1/jobs", params={"status": "succeeded"}, headers=served.auth(Role.READER)
    )
    assert gauge["succeeded"] == len(succeeded.json()) >= 1


# -- body limit -----------------------------------------------------------------------------


@pytest.fixture
def limited(
    bare_client: Callable[..., AbstractContextManager[TestClient]],
) -> Iterator[TestClient]:
    with bare_client(max_body_bytes=LIMIT, auth_enabled=False) as client:
        yield client


def chunks(total: int, size: int = 512) -> Iterator[bytes]:
    """A body without Content-Length (sent chunked)."""
    while total > 0:
        yield b"x" * min(size, total)
        total -= size


def test_a_declared_body_over_the_limit_is_413(limited: TestClient) -> None:
    response = limited.post(
        "/v1/datasets", params={"family": "tabular", "name": "big"}, content=b"x" * (LIMIT + 1)
    )
    assert response.status_code == 413
    body = assert_error_body(response, "PayloadTooLarge")
    assert str(LIMIT) in body["error"]["message"]
    assert limited.get("/v1/datasets").json() == []


def test_a_streamed_body_over_the_limit_is_413(limited: TestClient) -> None:
    response = limited.post(
        "/v1/datasets", params={"family": "tabular", "name": "big"}, content=chunks(LIMIT * 2)
    )
    assert response.status_code == 413
    assert_error_body(response, "PayloadTooLarge")


def test_a_streamed_json_body_over_the_limit_is_413(limited: TestClient) -> None:
    response = limited.post(
        "/v1/models/m/predict",
        content=chunks(LIMIT * 2),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_a_body_under_the_limit_goes_through(limited: TestClient) -> None:
    inputs = [{"x": "y" * 100}] * 5
    response = limited.post("/v1/models/unknown/predict", json={"inputs": inputs})
    assert response.status_code == 404  # reached the route: the model does not exist
    assert_error_body(response, "NotFound")


# -- error body -----------------------------------------------------------------------------


def test_every_error_has_the_same_body(served: Served) -> None:
    client, model = served.client, served.model
    cases = [
        (client.get("/v1/models"), 401, "Unauthorized"),
        (client.get("/v1/keys", headers=served.auth(Role.READER)), 403, "Forbidden"),
        (client.get("/v1/models/ghost", headers=served.auth()), 404, "NotFound"),
        (
            client.post(f"/v1/jobs/{served.train_job_id}/cancel", headers=served.auth()),
            409,
            "Conflict",
        ),
        (
            client.post(f"/v1/models/{model}/predict", json={"inputs": 1}, headers=served.auth()),
            422,
            "InvalidInput",
        ),
        (
            client.post(
                f"/v1/models/{model}/predict", json={"inputs": [{}]}, headers=served.auth()
            ),
            422,
            "InvalidInput",
        ),
        (client.delete("/v1/health"), 405, "HTTPError"),
    ]
    for response, status, kind in cases:
        assert response.status_code == status, response.text
        assert_error_body(response, kind)


def test_validation_issues_carry_loc_and_message(served: Served) -> None:
    response = served.client.post(
        f"/v1/models/{served.model}/predict", json={"inputs": [{}]}, headers=served.auth()
    )
    issues = response.json()["error"]["issues"]
    assert len(issues) >= 5  # one per missing feature
    for issue in issues:
        assert set(issue) == {"loc", "message"}
        assert issue["loc"].startswith("inputs[0].")
        assert issue["message"] == "missing feature"


def test_a_sent_request_id_is_in_the_error_body(served: Served) -> None:
    response = served.client.get("/v1/models", headers={"X-Request-ID": "err-trace-7"})
    assert response.status_code == 401
    assert response.json()["request_id"] == "err-trace-7"


# -- docs -----------------------------------------------------------------------------------


def test_docs_and_schema_answer_without_a_key(served: Served) -> None:
    docs = served.client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    schema = served.client.get("/openapi.json")
    assert schema.status_code == 200
    body = schema.json()
    assert body["info"]["title"] == "learnloop"
    assert "/v1/models/{name}/predict" in body["paths"]
    assert "/metrics" not in body["paths"]


def test_an_unexpected_error_answers_500_in_the_error_shape(
    bare_client: Callable[..., AbstractContextManager[TestClient]],
) -> None:
    with bare_client() as client:

        def broken() -> None:
            raise RuntimeError("bug in a route")

        client.app.add_api_route("/v1/health/broken", broken)  # type: ignore[attr-defined]
        client.app.openapi_schema = None  # type: ignore[attr-defined]
        response = client.get("/v1/health/broken", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "boom-1"
    assert response.json() == {
        "error": {"type": "InternalError", "message": "internal server error", "issues": []},
        "request_id": "boom-1",
    }


def test_the_access_log_names_routes_not_paths_with_subject_ids(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    subject = "alice@example.com"
    with caplog.at_level("INFO", logger="learnloop.access"):
        response = served.client.get(f"/v1/subjects/{subject}", headers=served.auth())
    assert response.status_code == 200
    lines = [r for r in caplog.records if r.name == "learnloop.access"]
    assert lines and all(subject not in r.getMessage() for r in lines)
    assert {getattr(r, "route", None) for r in lines} == {"/v1/subjects/{subject_id}"}
    assert all(subject not in str(r.__dict__) for r in lines)

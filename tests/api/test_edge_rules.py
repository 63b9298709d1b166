"""One validation of identifiers and numbers at the edge, for every route and transport.

A version that cannot be a version, a model name with ``/`` or ``:``, an integer beyond 64 bits,
an infinite or unbounded time limit: each is the client's mistake (422, or 400 in the v2
protocol's shape), never a lookup that reaches MLflow and comes back as 503, and never a stored
setting that later takes serving down. A version the client names must exist (404), even when a
fallback chain could answer.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pandas as pd
import pytest

from learnloop.core.deployments import FallbackSpec
from learnloop.core.errors import InvalidInput
from learnloop.core.serving import _timeout_s
from tests.api.conftest import Served
from tests.conftest import train_version

MODEL = "edge"


@pytest.fixture(scope="module")
def edge(served: Served, ai4i_sample: pd.DataFrame) -> Served:
    train_version(served.container, ai4i_sample, model=MODEL, alias="champion", seed=3)
    return served


def _issue_locs(r: Any) -> list[str]:
    return [i["loc"] for i in r.json()["error"]["issues"]]


def test_a_version_that_is_not_a_number_is_422_everywhere(edge: Served) -> None:
    s, h = edge, edge.auth()
    rows = s.rows[:1]
    calls = [
        ("GET", f"/v1/models/{MODEL}/versions/abc", None),
        ("POST", f"/v1/models/{MODEL}/predict", {"inputs": rows, "version": "abc"}),
        ("POST", f"/v1/models/{MODEL}/predict", {"inputs": rows, "version": "1; drop"}),
        ("PUT", f"/v1/models/{MODEL}/aliases/probe", {"version": "abc"}),
        ("GET", f"/v1/models/{MODEL}/importance?version=abc", None),
        ("POST", "/v1/batch", {"model": MODEL, "dataset_id": s.dataset_id, "version": "x1"}),
        (
            "POST",
            "/v1/evaluation/run",
            {"model": MODEL, "candidate": "abc", "dataset_id": s.dataset_id, "metric": "f1"},
        ),
        ("GET", f"/v1/models/{MODEL}/versions/99999999999999999999", None),
    ]
    for method, url, body in calls:
        r = s.client.request(method, url, json=body, headers=h)
        assert r.status_code == 422, (method, url, r.status_code, r.text)
        assert any("version" in loc or "candidate" in loc for loc in _issue_locs(r)), r.text
    for url in (
        f"/v2/models/{MODEL}/versions/abc",
        f"/v2/models/{MODEL}/versions/abc/ready",
    ):
        r = s.client.get(url, headers=h)
        assert r.status_code == 400 and "version" in r.json()["error"], (url, r.text)
    infer = {"inputs": [{"name": "Type", "shape": [1], "datatype": "BYTES", "data": ["L"]}]}
    r = s.client.post(f"/v2/models/{MODEL}/versions/abc/infer", json=infer, headers=h)
    assert r.status_code == 400 and "version" in r.json()["error"], r.text
    r = s.client.post(
        f"/v2/models/{MODEL}/infer",
        json={**infer, "parameters": {"alias": "no/such"}},
        headers=h,
    )
    assert r.status_code == 400 and "parameters.alias" in r.json()["error"], r.text


def test_model_names_with_slashes_colons_or_nothing_are_422(edge: Served) -> None:
    s, h = edge, edge.auth()
    for name in ("", "a/b", "a:b", "-x", "x" * 200, "a b"):
        r = s.client.post("/v1/batch", json={"model": name, "dataset_id": s.dataset_id}, headers=h)
        assert r.status_code == 422 and "model" in _issue_locs(r)[0], (name, r.text)
    for name in ("a:b", "x" * 200, "a%00b"):
        r = s.client.get(f"/v1/models/{name}/versions", headers=h)
        assert r.status_code == 422, (name, r.text)
    for url in ("/v1/jobs/a:b:c%00/events", "/v1/datasets/..%20x", "/v1/subjects/a%01b"):
        r = s.client.get(url, headers=h)
        assert r.status_code == 422, (url, r.text)


def test_integers_beyond_64_bits_are_422_not_500(edge: Served) -> None:
    s, h = edge, edge.auth()
    huge = 2**70
    r = s.client.post(
        "/v1/jobs", json={"kind": "train", "payload": {}, "priority": huge}, headers=h
    )
    assert r.status_code == 422 and "priority" in r.text, r.text
    r = s.client.post(
        "/v1/jobs", json={"kind": "train", "payload": {}, "priority": -(10**6)}, headers=h
    )
    assert r.status_code == 422, r.text
    r = s.client.get(f"/v1/jobs/{s.train_job_id}/events?after={huge}", headers=h)
    assert r.status_code == 422 and "after" in _issue_locs(r)[0], r.text
    r = s.client.get(f"/v1/jobs/{s.train_job_id}/events?after=-1", headers=h)
    assert r.status_code == 422, r.text
    r = s.client.get(f"/v1/feedback/metrics?window={'9' * 30}d", headers=h)
    assert r.status_code == 422 and "window" in _issue_locs(r)[0], r.text


def _deploy(s: Served, spec: dict[str, Any]) -> Any:
    return s.client.put(f"/v1/models/{MODEL}/deployment", json=spec, headers=s.auth())


def test_unbounded_or_infinite_deployment_numbers_are_refused(edge: Served) -> None:
    base = {"mode": "single", "arms": [{"name": "main", "alias": "champion", "weight": 100}]}
    bad = {
        "fallback.timeout_ms": {"timeout_ms": 1e309},  # JSON's way to write infinity
        "fallback.breaker_reset_s": {"breaker_reset_s": 1e300},
        "fallback.breaker_failures": {"breaker_failures": 2**70},
    }
    revision = edge.client.get(f"/v1/models/{MODEL}/deployment", headers=edge.auth()).json()
    for loc, fallback in bad.items():
        # sent as text: JSON encoders refuse to write 1e309 themselves
        text = json.dumps({**base, "fallback": {"chain": []}}).replace(
            '"chain": []', ", ".join(f'"{k}": {v!r}' for k, v in fallback.items())
        )
        r = edge.client.put(
            f"/v1/models/{MODEL}/deployment",
            content=text.replace("inf", "1e309"),
            headers={**edge.auth(), "content-type": "application/json"},
        )
        assert r.status_code == 422, (loc, r.text)
        assert any(loc in x for x in _issue_locs(r)), (loc, r.text)
    r = _deploy(edge, {**base, "fallback": {"timeout_ms": 10 * 60_000 + 1}})
    assert r.status_code == 422, r.text
    r = _deploy(edge, {**base, "fallback": {"chain": ["version:abc"]}})
    assert r.status_code == 422, r.text
    after = edge.client.get(f"/v1/models/{MODEL}/deployment", headers=edge.auth()).json()
    assert after["revision"] == revision["revision"]  # nothing stored
    predicted = edge.client.post(
        f"/v1/models/{MODEL}/predict", json={"inputs": edge.rows[:1]}, headers=edge.auth()
    )
    assert predicted.status_code == 200, predicted.text


def test_the_engine_clamps_a_stored_limit_it_cannot_trust() -> None:
    # a spec stored before the bounds existed (or written by hand) bypasses validation
    assert _timeout_s(FallbackSpec.model_construct(timeout_ms=float("inf"))) is None
    assert _timeout_s(FallbackSpec.model_construct(timeout_ms=float("nan"))) is None
    assert _timeout_s(FallbackSpec.model_construct(timeout_ms=1e12)) == 600.0
    assert _timeout_s(FallbackSpec.model_construct(timeout_ms=250.0)) == 0.25


def test_a_named_version_that_does_not_exist_is_404_even_with_fallbacks(edge: Served) -> None:
    spec = {
        "mode": "single",
        "arms": [{"name": "main", "alias": "champion", "weight": 100}],
        "fallback": {"chain": ["version:1"]},
        "reason": "fallback to version 1",
    }
    assert _deploy(edge, spec).status_code == 200
    url = f"/v1/models/{MODEL}/predict"
    r = edge.client.post(url, json={"inputs": edge.rows[:1], "version": "999"}, headers=edge.auth())
    assert r.status_code == 404 and "999" in r.json()["error"]["message"], r.text
    r = edge.client.post(url, json={"inputs": edge.rows[:1], "alias": "nope"}, headers=edge.auth())
    assert r.status_code == 404, r.text
    v2 = {"inputs": [{"name": "Type", "shape": [1], "datatype": "BYTES", "data": ["L"]}]}
    r = edge.client.post(f"/v2/models/{MODEL}/versions/999/infer", json=v2, headers=edge.auth())
    assert r.status_code == 404, r.text
    r = edge.client.post(url, json={"inputs": edge.rows[:1], "version": "1"}, headers=edge.auth())
    assert r.status_code == 200 and r.json()["version"] == "1", r.text


def test_true_and_false_are_not_numbers(edge: Served) -> None:
    s, h = edge, edge.auth()
    cases = [
        (
            "POST",
            "/v1/active-learning/select",
            {"model": MODEL, "budget": 1, "seed": False},
            "seed",
        ),
        ("POST", f"/v1/datasets/{s.dataset_id}/synthesize", {"rows": 10, "seed": True}, "seed"),
        (
            "POST",
            "/v1/jobs",
            {"kind": "train", "payload": {}, "max_attempts": True},
            "max_attempts",
        ),
    ]
    for method, url, body, field in cases:
        r = s.client.request(method, url, json=body, headers=h)
        assert r.status_code == 422, (url, r.text)
        assert any(loc.endswith(field) for loc in _issue_locs(r)), r.text


def test_labels_that_are_not_one_value_are_left_out_of_a_feedback_dataset(edge: Served) -> None:
    s, h = edge, edge.auth()
    labels: list[Any] = [0, 1, [1, 2], {"a": 1}, 1, 0, 1, 0, 1, 0, 0, 1]
    for i, label in enumerate(labels):
        r = s.client.post(
            f"/v1/models/{MODEL}/predict", json={"inputs": s.rows[i % 5 : i % 5 + 1]}, headers=h
        )
        assert r.status_code == 200, r.text
        pid = r.json()["prediction_ids"][0]
        f = s.client.post(
            "/v1/feedback", json={"type": "label", "prediction_id": pid, "value": label}, headers=h
        )
        assert f.status_code == 201, f.text
        time.sleep(0.01)  # distinct prediction times for the time split
    r = s.client.post(
        "/v1/datasets/from-feedback",
        json={"model": MODEL, "valid_fraction": 0.4, "name": None},
        headers=h,
    )
    assert r.status_code == 201, r.text
    lineage = r.json()["dataset"]["manifest"]["lineage"]
    steps = {t["step"]: t for t in lineage["transforms"]}
    assert steps["labels"]["left_out_not_a_single_value"] == 2
    assert r.json()["dataset"]["rows"] == 10


def test_a_parameter_route_never_answers_for_a_path_a_literal_route_owns(edge: Served) -> None:
    s, h = edge, edge.auth()
    for method, url, allow in [
        ("DELETE", f"/v1/models/{MODEL}/aliases/history", "GET"),
        ("PUT", f"/v1/models/{MODEL}/aliases/history", "GET"),
        ("GET", "/v1/feedback/batch", "POST"),
        ("GET", "/v1/training/start", "POST"),
    ]:
        r = s.client.request(method, url, json={"version": "1"}, headers=h)
        assert r.status_code == 405 and r.headers["allow"] == allow, (method, url, r.text)
    with pytest.raises(InvalidInput):  # nor can another client make an alias of that name
        s.container.registry.set_alias(MODEL, "history", "1", actor="test")
    r = s.client.get(f"/v1/models/{MODEL}/aliases/history", headers=h)
    assert r.status_code == 200 and isinstance(r.json(), list)


def test_free_form_objects_keep_the_bounds_of_every_other_field(edge: Served) -> None:
    s, h = edge, edge.auth()
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    bodies = [
        '{"kind": "tune", "payload": {"params": {"lr": 1e309}}}',
        '{"kind": "tune", "payload": {"n": 99999999999999999999999}}',
        json.dumps({"kind": "tune", "payload": {"x": deep}}),
        json.dumps({"kind": "tune", "payload": {"bad\x00key": 1}}),
    ]
    for text in bodies:
        r = s.client.post(
            "/v1/jobs", content=text, headers={**h, "content-type": "application/json"}
        )
        assert r.status_code == 422 and "payload" in r.text, (text[:80], r.text)
    r = s.client.put(f"/v1/models/{MODEL}/policy", json={"x": deep}, headers=h)
    assert r.status_code == 422, r.text


def test_a_query_parameter_the_route_does_not_take_is_422(edge: Served) -> None:
    s, h = edge, edge.auth()
    for url in ("/v1/jobs?limt=5", f"/v1/drift/reports/{MODEL}?limit=1&=null", "/v1/health?x=1"):
        r = s.client.get(url, headers=h)
        assert r.status_code == 422, (url, r.text)
        assert _issue_locs(r)[0].startswith("query."), r.text
    assert s.client.get("/v1/jobs?limit=5", headers=h).status_code == 200
    r = s.client.get(f"/v2/models/{MODEL}/ready?x=1")
    assert r.status_code == 400 and "query.x" in r.json()["error"], r.text

"""Bounds and edge rules on client input, through the real app: non-standard JSON constants,
size limits on strings and objects, control characters in identifiers, metric labels."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from learnloop.core.auth import Role
from learnloop.families.tabular.family import TabularFamily
from tests.api.conftest import TORQUE, Served


def post_raw(served: Served, path: str, body: str, role: Role = Role.ADMIN) -> Any:
    headers = {**served.auth(role), "Content-Type": "application/json"}
    return served.client.post(path, content=body.encode(), headers=headers)


def predict_body(served: Served, **changes: Any) -> dict[str, Any]:
    row = {**served.rows[0], **changes}
    return {"inputs": [row]}


def issue_locs(response: Any) -> list[str]:
    return [i["loc"] for i in response.json()["error"]["issues"]]


# -- NaN / Infinity ---------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_a_nonstandard_constant_in_a_predict_body_is_refused_with_its_path(
    served: Served, token: str
) -> None:
    body = json.dumps(predict_body(served)).replace(
        f'"{TORQUE}": {json.dumps(served.rows[0][TORQUE])}', f'"{TORQUE}": {token}'
    )
    assert token in body
    r = post_raw(served, f"/v1/models/{served.model}/predict", body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["type"] == "InvalidInput"
    assert issue_locs(r) == [f"body.inputs.0.{TORQUE}"]
    assert token in r.json()["error"]["issues"][0]["message"]


def test_nan_as_a_string_is_left_to_the_family(served: Served) -> None:
    r = served.client.post(
        f"/v1/models/{served.model}/predict",
        json=predict_body(served, **{TORQUE: "NaN"}),
        headers=served.auth(),
    )
    assert r.status_code == 422
    assert issue_locs(r) == [f"inputs[0].{TORQUE}"]
    assert "finite" in r.json()["error"]["issues"][0]["message"]


def test_constants_inside_strings_are_not_refused(served: Served) -> None:
    subject = f"NaN-Infinity-{uuid.uuid4()}"
    r = served.client.post(
        "/v1/feedback",
        json={"type": "click", "subject_id": subject, "text": "Infinity and NaN"},
        headers=served.auth(Role.INGEST),
    )
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_feedback_with_a_nonstandard_constant_is_refused_and_not_stored(
    served: Served, token: str
) -> None:
    subject = f"fb-const-{uuid.uuid4()}"
    body = f'{{"type": "signal", "name": "score", "value": {token}, "subject_id": "{subject}"}}'
    r = post_raw(served, "/v1/feedback", body, Role.INGEST)
    assert r.status_code == 422, r.text
    assert issue_locs(r) == ["body.value"]
    event = f'{{"type": "click", "subject_id": "{subject}", "attributes": {{"w": {token}}}}}'
    batch = f'{{"events": [{event}]}}'
    r = post_raw(served, "/v1/feedback/batch", batch, Role.INGEST)
    assert r.status_code == 422, r.text
    assert issue_locs(r) == ["body.events.0.attributes.w"]
    stored = served.client.get(
        "/v1/feedback", params={"subject_id": subject}, headers=served.auth(Role.READER)
    )
    assert stored.json() == []


def test_an_oip_infer_body_with_nan_is_refused(served: Served) -> None:
    tensors = [
        {
            "name": name,
            "datatype": "BYTES" if isinstance(value, str) else "FP64",
            "shape": [1, 1],
            "data": ["__torque__" if name == TORQUE else value],
        }
        for name, value in served.rows[0].items()
    ]
    text = json.dumps({"inputs": tensors}).replace('"__torque__"', "NaN")
    r = post_raw(served, f"/v2/models/{served.model}/infer", text)
    assert r.status_code == 422, r.text
    at = next(i for i, t in enumerate(tensors) if t["name"] == TORQUE)
    assert issue_locs(r) == [f"body.inputs.{at}.data.0"]


def test_a_body_that_is_not_json_is_left_to_the_route(served: Served) -> None:
    r = post_raw(served, f"/v1/models/{served.model}/predict", '{"inputs": [NaN')
    assert r.status_code == 422
    assert r.json()["error"]["type"] == "InvalidInput"


# -- datasets ---------------------------------------------------------------------------------


def test_reimporting_the_same_data_with_other_params_is_another_snapshot(served: Served) -> None:
    frame, _ = TabularFamily.example_data(rows=40, seed=7)
    body = frame.to_csv(index=False).encode()
    name = f"reimport-{uuid.uuid4()}"

    def upload(params: dict[str, Any]) -> dict[str, Any]:
        r = served.client.post(
            "/v1/datasets",
            params={"family": "tabular", "name": name, "params": json.dumps(params)},
            content=body,
            headers={**served.auth(), "Content-Type": "text/csv"},
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    failure = upload({"target": "failure", "drop_columns": ["load"]})
    load = upload({"target": "load", "drop_columns": ["failure"]})
    again = upload({"drop_columns": ["failure"], "target": "load"})
    assert load["id"] != failure["id"]
    assert load["manifest"]["params"]["target"] == "load"
    assert failure["manifest"]["params"]["target"] == "failure"
    assert again["id"] == load["id"]  # same data, same params: the same snapshot


# -- tabular inputs ---------------------------------------------------------------------------


def test_a_misspelt_feature_is_422_and_an_extra_key_is_reported(served: Served) -> None:
    row = {k: v for k, v in served.rows[0].items() if k != TORQUE}
    r = served.client.post(
        f"/v1/models/{served.model}/predict",
        json={"inputs": [{**row, "Torque [nm]": served.rows[0][TORQUE]}]},
        headers=served.auth(),
    )
    assert r.status_code == 422, r.text
    found = {i["loc"]: i["message"] for i in r.json()["error"]["issues"]}
    assert found == {f"inputs[0].{TORQUE}": "missing feature (sent 'Torque [nm]': a misspelling?)"}
    r = served.client.post(
        f"/v1/models/{served.model}/predict",
        json={"inputs": [{**served.rows[0], "colour": "red"}]},
        headers=served.auth(),
    )
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["warnings"] == ["colour: not a feature of this model; ignored"]


def test_an_unknown_category_is_served_with_a_warning_on_both_protocols(served: Served) -> None:
    rows = [served.rows[0], {**served.rows[0], "Type": "unheard-of"}]
    r = served.client.post(
        f"/v1/models/{served.model}/predict", json={"inputs": rows}, headers=served.auth()
    )
    assert r.status_code == 200, r.text
    outputs = r.json()["outputs"]
    assert "warnings" not in outputs[0]
    assert outputs[1]["warnings"] == [
        "Type: unknown category 'unheard-of' (not seen in training; predicted as none of the "
        "known categories)"
    ]
    meta = served.client.get(f"/v2/models/{served.model}", headers=served.auth())
    tensors = [
        {
            "name": spec["name"],
            "datatype": spec["datatype"],
            "shape": [2, 1],
            "data": [row[spec["name"]] for row in rows],
        }
        for spec in meta.json()["inputs"]
    ]
    r = served.client.post(
        f"/v2/models/{served.model}/infer", json={"inputs": tensors}, headers=served.auth()
    )
    assert r.status_code == 200, r.text
    by_name = {t["name"]: t for t in r.json()["outputs"]}
    assert json.loads(by_name["warnings"]["data"][0]) is None
    assert json.loads(by_name["warnings"]["data"][1]) == outputs[1]["warnings"]


# -- bounds on predict requests ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"n" * 257: 1}, "at most 256"),
        ({"a\x00b": 1}, "control character"),
        ({"note": "x" * 1_000_000}, "at most 10000"),
        ({"nested": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}, "nested deeper"),
        ({f"f{i}": 0 for i in range(10_001)}, "at most 10000"),
    ],
)
def test_predict_inputs_are_bounded(served: Served, change: dict[str, Any], words: str) -> None:
    r = served.client.post(
        f"/v1/models/{served.model}/predict",
        json={"inputs": [served.rows[0], {**served.rows[0], **change}]},
        headers=served.auth(),
    )
    assert r.status_code == 422, r.text[:300]
    issues = r.json()["error"]["issues"]
    assert [i["loc"] for i in issues] == ["body.inputs.1"]
    assert words in issues[0]["message"]


def test_a_subject_id_with_a_nul_byte_is_422(served: Served) -> None:
    r = served.client.post(
        f"/v1/models/{served.model}/predict",
        json={"inputs": served.rows[:1], "subject_id": "learner\x00-1"},
        headers=served.auth(),
    )
    assert r.status_code == 422, r.text
    assert issue_locs(r) == ["body.subject_id"]


# -- metric labels ----------------------------------------------------------------------------


def metric_labels(served: Served, name: str) -> list[dict[str, str]]:
    text = served.client.get("/metrics").text
    return [
        sample.labels
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def test_a_fallback_from_an_unknown_version_is_labelled_other(served: Served) -> None:
    sink = served.container.serving_metrics
    assert sink is not None
    bogus = f"9{uuid.uuid4().int % 10**8}"
    sink.fallback(served.model, bogus, "error")
    sink.fallback(served.model, "1", "timeout")
    labels = metric_labels(served, "learnloop_serving_fallbacks_total")
    versions = {(x["version"], x["reason"]) for x in labels if x["model"] == served.model}
    assert ("other", "error") in versions and ("1", "timeout") in versions
    assert not any(x["version"] == bogus for x in labels)


def test_an_unknown_http_method_is_counted_as_other(served: Served) -> None:
    served.client.request("BREW", "/v1/health")
    labels = metric_labels(served, "learnloop_http_requests_total")
    methods = {x["method"] for x in labels}
    assert "OTHER" in methods and "BREW" not in methods

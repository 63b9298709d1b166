"""The Open Inference Protocol (v2) over REST, driven by the real ``tritonclient.http``.

The module trains its own models (so deployments other tests set never reach it): ``failure``
(AI4I, a categorical and five numeric features; ``champion`` on version 1, version 2 unrouted)
and ``numeric`` (the numeric features only). The app runs under uvicorn on a free port in a
thread, because ``tritonclient.http`` needs a real socket.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as httpclient
import uvicorn
from fastapi.testclient import TestClient
from tritonclient.utils import InferenceServerException

from learnloop.api.app import create_app
from learnloop.container import Container
from learnloop.core.auth import Role
from tests.conftest import LEAKS, fast_settings, train_version

TARGET = "Machine failure"
INTEGER_FEATURES = {"Rotational speed [rpm]", "Tool wear [min]"}


@dataclass(frozen=True)
class V2Home:
    """A container with the two models, one key per role and a few rows of features."""

    container: Container
    tokens: dict[Role, str]
    rows: list[dict[str, Any]]
    kinds: dict[str, str]
    numeric_rows: list[dict[str, Any]]
    numeric_kinds: dict[str, str]

    def headers(self, role: Role = Role.INGEST) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def build_v2_home(home: Path, frame: pd.DataFrame) -> V2Home:
    """Train ``failure`` v1 (champion) and v2, and ``numeric`` v1 (champion), in ``home``."""
    c = Container(fast_settings(home)).open()
    train_version(c, frame, model="failure", alias="champion")
    train_version(c, frame, model="failure", n_estimators=8)
    train_version(c, frame, model="numeric", alias="champion", drop_columns=[*LEAKS, "Type"])
    tokens = {role: c.keys.create(role, f"{role.value}-v2", actor="test")[1] for role in Role}
    kinds = c.serving.models.get("failure", "1").instance.describe()["features"]
    numeric_kinds = c.serving.models.get("numeric", "1").instance.describe()["features"]
    sample = frame.sample(7, random_state=3)
    rows = json.loads(sample[list(kinds)].to_json(orient="records"))
    numeric_rows = json.loads(sample[list(numeric_kinds)].to_json(orient="records"))
    return V2Home(c, tokens, rows, kinds, numeric_rows, numeric_kinds)


def feature_inputs(module: Any, home: V2Home, rows: list[dict[str, Any]]) -> list[Any]:
    """One ``[N, 1]`` tensor per feature: ``Type`` as BYTES, integer columns as INT64, the rest
    as FP64 — built with ``module.InferInput`` (tritonclient.http or .grpc)."""
    inputs = []
    for name, kind in home.kinds.items():
        values = [row[name] for row in rows]
        if kind != "numeric":
            array = np.array(values, dtype=object).reshape(-1, 1)
            datatype = "BYTES"
        elif name in INTEGER_FEATURES:
            array, datatype = np.array(values, dtype=np.int64).reshape(-1, 1), "INT64"
        else:
            array, datatype = np.array(values, dtype=np.float64).reshape(-1, 1), "FP64"
        tensor = module.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    return inputs


def matrix_input(module: Any, home: V2Home, width: int | None = None) -> Any:
    """The ``numeric`` model's features as one ``[N, F]`` FP64 tensor ``input-0``."""
    names = list(home.numeric_kinds)[:width]
    array = np.array([[row[n] for n in names] for row in home.numeric_rows], dtype=np.float64)
    tensor = module.InferInput("input-0", list(array.shape), "FP64")
    tensor.set_data_from_numpy(array)
    return tensor


def assert_matches(result: Any, expected: list[dict[str, Any]]) -> None:
    """The response tensors hold what ``serving.predict`` answered for the same rows."""
    predictions = result.as_numpy("prediction")
    assert predictions.shape == (len(expected),)
    assert predictions.tolist() == [e["prediction"] for e in expected]
    probabilities = result.as_numpy("probabilities")
    labels = list(expected[0]["probabilities"])
    assert probabilities.shape == (len(expected), len(labels))
    want = [[e["probabilities"][label] for label in labels] for e in expected]
    np.testing.assert_allclose(probabilities, want, rtol=1e-12)


def code_of(error: InferenceServerException) -> str:
    return str(error.status())


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def v2_home(
    tmp_path_factory: pytest.TempPathFactory, ai4i_sample: pd.DataFrame
) -> Iterator[V2Home]:
    home = build_v2_home(tmp_path_factory.mktemp("v2-rest"), ai4i_sample)
    yield home
    home.container.close()


@pytest.fixture(scope="module")
def http_url(v2_home: V2Home) -> Iterator[str]:
    """The app under a real uvicorn server on a free port (the container stays the fixture's)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    app = create_app(v2_home.container, workers=False)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    yield f"127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture(scope="module")
def triton(http_url: str) -> Iterator[httpclient.InferenceServerClient]:
    client = httpclient.InferenceServerClient(url=http_url)
    yield client
    client.close()


# -- health and metadata --------------------------------------------------------------------------


def test_live_and_ready_answer_without_a_key(triton: httpclient.InferenceServerClient) -> None:
    assert triton.is_server_live()
    assert triton.is_server_ready()
    assert triton.is_model_ready("failure")
    assert triton.is_model_ready("failure", "2")
    assert triton.is_model_ready("numeric")
    assert not triton.is_model_ready("no-such-model")
    assert not triton.is_model_ready("failure", "99")


def test_server_metadata(triton: httpclient.InferenceServerClient, v2_home: V2Home) -> None:
    found = triton.get_server_metadata(headers=v2_home.headers())
    assert found["name"] == "learnloop"
    assert "binary_tensor_data" in found["extensions"]


def test_model_metadata_names_the_features(
    triton: httpclient.InferenceServerClient, v2_home: V2Home
) -> None:
    found = triton.get_model_metadata("failure", headers=v2_home.headers())
    assert found["name"] == "failure"
    assert found["versions"] == ["1", "2"]
    assert found["platform"] == "learnloop-tabular"
    assert [i["name"] for i in found["inputs"]] == list(v2_home.kinds)
    by_name = {i["name"]: i for i in found["inputs"]}
    assert by_name["Type"]["datatype"] == "BYTES"
    assert by_name["Torque [Nm]"] == {
        "name": "Torque [Nm]",
        "datatype": "FP64",
        "shape": [-1, 1],
        "parameters": {"kind": "numeric"},
    }
    outputs = {o["name"]: o for o in found["outputs"]}
    assert outputs["prediction"]["datatype"] == "INT64"
    assert outputs["probabilities"]["shape"] == [-1, 2]
    assert json.loads(outputs["probabilities"]["parameters"]["classes"]) == ["0", "1"]
    pinned = triton.get_model_metadata("numeric", "1", headers=v2_home.headers())
    assert [i["name"] for i in pinned["inputs"]] == list(v2_home.numeric_kinds)
    assert "Type" not in v2_home.numeric_kinds


# -- infer ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_per_feature_tensors_matches_serving(
    triton: httpclient.InferenceServerClient, v2_home: V2Home, binary: bool
) -> None:
    inputs = feature_inputs(httpclient, v2_home, v2_home.rows)
    if not binary:
        for tensor, name in zip(inputs, v2_home.kinds, strict=True):
            tensor.set_data_from_numpy(_array_of(v2_home, name), binary_data=False)
    outputs = [
        httpclient.InferRequestedOutput(name, binary_data=binary)
        for name in ("prediction", "probabilities")
    ]
    result = triton.infer(
        "failure", inputs, outputs=outputs, request_id="req-7", headers=v2_home.headers()
    )
    expected = v2_home.container.serving.predict("failure", v2_home.rows).outputs
    assert_matches(result, expected)
    response = result.get_response()
    assert response["id"] == "req-7"
    assert response["model_version"] == "1"
    assert len(json.loads(response["parameters"]["prediction_ids"])) == len(v2_home.rows)
    assert json.loads(response["parameters"]["served_by"])["version"] == "1"


def _array_of(home: V2Home, name: str) -> np.ndarray:
    values = [row[name] for row in home.rows]
    kind = home.kinds[name]
    dtype = object if kind != "numeric" else np.int64 if name in INTEGER_FEATURES else np.float64
    return np.array(values, dtype=dtype).reshape(-1, 1)


def test_infer_one_matrix_tensor_on_a_numeric_model(
    triton: httpclient.InferenceServerClient, v2_home: V2Home
) -> None:
    result = triton.infer("numeric", [matrix_input(httpclient, v2_home)], headers=v2_home.headers())
    expected = v2_home.container.serving.predict("numeric", v2_home.numeric_rows).outputs
    assert_matches(result, expected)


def test_infer_on_one_version(triton: httpclient.InferenceServerClient, v2_home: V2Home) -> None:
    inputs = feature_inputs(httpclient, v2_home, v2_home.rows)
    result = triton.infer("failure", inputs, model_version="2", headers=v2_home.headers())
    assert result.get_response()["model_version"] == "2"
    expected = v2_home.container.serving.predict("failure", v2_home.rows, version="2").outputs
    assert_matches(result, expected)
    routed = v2_home.container.serving.predict("failure", v2_home.rows).outputs
    assert [o["probabilities"] for o in expected] != [o["probabilities"] for o in routed]


def test_each_infer_lands_in_the_ledger(
    triton: httpclient.InferenceServerClient, v2_home: V2Home
) -> None:
    inputs = feature_inputs(httpclient, v2_home, v2_home.rows[:2])
    result = triton.infer("failure", inputs, headers=v2_home.headers())
    ids = json.loads(result.get_response()["parameters"]["prediction_ids"])
    assert len(ids) == 2
    c = v2_home.container
    assert c.ledger is not None and c.ledger.flush()
    predictions = result.as_numpy("prediction")
    for pid, row, prediction in zip(ids, v2_home.rows[:2], predictions, strict=True):
        record = c.predictions.get(pid)
        assert record is not None
        assert (record.model, record.version) == ("failure", "1")
        assert record.output["prediction"] == prediction
        assert record.inputs == pytest.approx(row)


# -- errors ---------------------------------------------------------------------------------------


def _without(inputs: list[Any], name: str) -> list[Any]:
    return [t for t in inputs if t.name() != name]


def _replace(inputs: list[Any], name: str, array: np.ndarray, datatype: str) -> list[Any]:
    tensor = httpclient.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array)
    return [tensor if t.name() == name else t for t in inputs]


BAD_REQUESTS: dict[str, tuple[Callable[[list[Any]], list[Any]], list[str]]] = {
    "wrong shape": (
        lambda inputs: _replace(inputs, "Torque [Nm]", np.ones((7, 2)), "FP64"),
        ["input 'Torque [Nm]'", "shape is [7, 2], expected [N, 1] or [N]"],
    ),
    "wrong dtype": (
        lambda inputs: _replace(
            inputs, "Torque [Nm]", np.array([["40.1"]] * 7, dtype=object), "BYTES"
        ),
        ["input 'Torque [Nm]'", "datatype is BYTES, expected a number datatype"],
    ),
    "missing input": (
        lambda inputs: _without(inputs, "Tool wear [min]"),
        ["input 'Tool wear [min]'", "missing (FP64 [N, 1], a numeric feature)"],
    ),
    "unknown input": (
        lambda inputs: [*inputs, _tensor("speed", np.ones((7, 1)))],
        ["input 'speed'", "not an input of this model"],
    ),
    "row counts differ": (
        lambda inputs: _replace(inputs, "Torque [Nm]", np.ones((3, 1)), "FP64"),
        ["row counts differ", "'Torque [Nm]': 3", "'Type': 7"],
    ),
}


def _tensor(name: str, array: np.ndarray) -> Any:
    tensor = httpclient.InferInput(name, list(array.shape), "FP64")
    tensor.set_data_from_numpy(array)
    return tensor


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_a_request_that_does_not_fit_is_a_400_naming_the_input(
    triton: httpclient.InferenceServerClient, v2_home: V2Home, case: str
) -> None:
    change, fragments = BAD_REQUESTS[case]
    inputs = change(feature_inputs(httpclient, v2_home, v2_home.rows))
    with pytest.raises(InferenceServerException) as caught:
        triton.infer("failure", inputs, headers=v2_home.headers())
    assert code_of(caught.value) == "400"
    for fragment in fragments:
        assert fragment in caught.value.message()


def test_a_matrix_of_the_wrong_width_is_a_400(
    triton: httpclient.InferenceServerClient, v2_home: V2Home
) -> None:
    with pytest.raises(InferenceServerException) as caught:
        triton.infer("numeric", [matrix_input(httpclient, v2_home, 3)], headers=v2_home.headers())
    assert code_of(caught.value) == "400"
    width = len(v2_home.numeric_kinds)
    assert "input 'input-0'" in caught.value.message()
    assert f"shape [N, {width}], got [7, 3]" in caught.value.message()


def test_a_matrix_on_a_model_with_a_categorical_feature_is_a_400(
    triton: httpclient.InferenceServerClient, v2_home: V2Home
) -> None:
    wide = np.ones((2, len(v2_home.kinds)))
    with pytest.raises(InferenceServerException) as caught:
        triton.infer("failure", [_tensor("input-0", wide)], headers=v2_home.headers())
    assert code_of(caught.value) == "400"
    assert "'Type' takes BYTES" in caught.value.message()


def test_unknown_model_or_version_is_a_404(
    triton: httpclient.InferenceServerClient, v2_home: V2Home
) -> None:
    inputs = feature_inputs(httpclient, v2_home, v2_home.rows)
    for model, version in [("no-such-model", ""), ("failure", "99")]:
        with pytest.raises(InferenceServerException) as caught:
            triton.infer(model, inputs, model_version=version, headers=v2_home.headers())
        assert code_of(caught.value) == "404", caught.value.message()
        with pytest.raises(InferenceServerException) as caught:
            triton.get_model_metadata(model, version, headers=v2_home.headers())
        assert code_of(caught.value) == "404"


def test_metadata_and_infer_need_a_predict_key(
    triton: httpclient.InferenceServerClient, v2_home: V2Home
) -> None:
    inputs = feature_inputs(httpclient, v2_home, v2_home.rows)
    calls: list[Callable[[dict[str, str] | None], Any]] = [
        lambda h: triton.infer("failure", inputs, headers=h),
        lambda h: triton.get_model_metadata("failure", headers=h),
        lambda h: triton.get_server_metadata(headers=h),
    ]
    for call in calls:
        for headers, code in [
            (None, "401"),
            ({"Authorization": "Bearer ll_nope_nope"}, "401"),
            (v2_home.headers(Role.READER), "403"),
        ]:
            with pytest.raises(InferenceServerException) as caught:
                call(headers)
            assert code_of(caught.value) == code
        call({"X-API-Key": v2_home.tokens[Role.OPERATOR]})


# -- plain JSON, as curl sends it -----------------------------------------------------------------


def test_plain_json_request_and_error_body(http_url: str, v2_home: V2Home) -> None:
    rows = v2_home.rows[:2]
    body = {
        "id": "curl-1",
        "parameters": {"subject_id": "machine-7"},
        "inputs": [
            {
                "name": name,
                "shape": [2, 1],
                "datatype": "BYTES" if kind != "numeric" else "FP64",
                "data": [[row[name]] for row in rows],
            }
            for name, kind in v2_home.kinds.items()
        ],
    }
    url = f"http://{http_url}/v2/models/failure/infer"
    r = httpx.post(url, json=body, headers=v2_home.headers())
    assert r.status_code == 200, r.text
    found = r.json()
    assert found["id"] == "curl-1"
    outputs = {o["name"]: o for o in found["outputs"]}
    expected = v2_home.container.serving.predict("failure", rows).outputs
    assert outputs["prediction"]["data"] == [e["prediction"] for e in expected]
    assert outputs["probabilities"]["shape"] == [2, 2]
    only = httpx.post(
        url, json={**body, "outputs": [{"name": "prediction"}]}, headers=v2_home.headers()
    )
    assert [o["name"] for o in only.json()["outputs"]] == ["prediction"]
    unknown = httpx.post(
        url, json={**body, "outputs": [{"name": "label"}]}, headers=v2_home.headers()
    )
    assert unknown.status_code == 400 and "output 'label': not an output" in unknown.text
    del body["inputs"][0]
    r = httpx.post(url, json=body, headers=v2_home.headers())
    assert r.status_code == 400
    assert set(r.json()) == {"error"}
    assert "input 'Type': missing" in r.json()["error"]
    r = httpx.post(url, content=b"{not json", headers=v2_home.headers())
    assert r.status_code == 400 and "invalid request" in r.json()["error"]
    r = httpx.post(url, json=body)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_without_auth_metadata_needs_no_key(
    bare_client: Callable[..., AbstractContextManager[TestClient]],
) -> None:
    with bare_client(auth_enabled=False) as client:
        assert client.get("/v2").json()["name"] == "learnloop"
        r = client.get("/v2/models/nothing-here")
        assert r.status_code == 404 and "nothing-here" in r.json()["error"]
        assert client.get("/v2/health/ready").json() == {"ready": True}

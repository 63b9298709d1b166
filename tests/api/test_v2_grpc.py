"""The Open Inference Protocol (v2) over gRPC, driven by the real ``tritonclient.grpc``.

The same two models as ``test_v2_rest`` (trained again in this module's own home), served by
:class:`~learnloop.grpc.server.GrpcInferenceServer` on a free port. ``tritonclient`` sends
``raw_input_contents``; typed ``contents`` go through learnloop's own generated stub.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from learnloop.core.auth import Role
from learnloop.grpc import grpc_predict_v2_pb2 as pb
from learnloop.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from learnloop.grpc.server import GrpcInferenceServer
from tests.api.test_v2_rest import (
    INTEGER_FEATURES,
    V2Home,
    assert_matches,
    build_v2_home,
    feature_inputs,
    matrix_input,
)


@pytest.fixture(scope="module")
def v2_home(
    tmp_path_factory: pytest.TempPathFactory, ai4i_sample: pd.DataFrame
) -> Iterator[V2Home]:
    home = build_v2_home(tmp_path_factory.mktemp("v2-grpc"), ai4i_sample)
    yield home
    home.container.close()


@pytest.fixture(scope="module")
def grpc_url(v2_home: V2Home) -> Iterator[str]:
    server = GrpcInferenceServer(v2_home.container, "127.0.0.1", 0, max_workers=4)
    port = server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=1)


@pytest.fixture(scope="module")
def triton(grpc_url: str) -> Iterator[grpcclient.InferenceServerClient]:
    client = grpcclient.InferenceServerClient(url=grpc_url)
    yield client
    client.close()


@pytest.fixture(scope="module")
def stub(grpc_url: str) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    channel = grpc.insecure_channel(grpc_url)
    yield pb_grpc.GRPCInferenceServiceStub(channel)
    channel.close()


def code_of(error: InferenceServerException) -> str:
    return str(error.status()).removeprefix("StatusCode.")


def metadata(home: V2Home, role: Role = Role.INGEST) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {home.tokens[role]}")]


# -- health and metadata -------------------------------------------------------------------------


def test_live_and_ready_answer_without_a_key(triton: grpcclient.InferenceServerClient) -> None:
    assert triton.is_server_live()
    assert triton.is_server_ready()
    assert triton.is_model_ready("failure")
    assert triton.is_model_ready("failure", "2")
    with pytest.raises(InferenceServerException) as caught:
        triton.is_model_ready("no-such-model")
    assert code_of(caught.value) == "NOT_FOUND"


def test_metadata(triton: grpcclient.InferenceServerClient, v2_home: V2Home) -> None:
    headers = dict(metadata(v2_home))
    server = triton.get_server_metadata(headers=headers, as_json=True)
    assert server["name"] == "learnloop"
    found = triton.get_model_metadata("failure", headers=headers, as_json=True)
    assert found["versions"] == ["1", "2"]
    assert [i["name"] for i in found["inputs"]] == list(v2_home.kinds)
    assert {o["name"]: o["datatype"] for o in found["outputs"]} == {
        "prediction": "INT64",
        "probabilities": "FP64",
    }
    pinned = triton.get_model_metadata("numeric", "1", headers=headers, as_json=True)
    assert [i["name"] for i in pinned["inputs"]] == list(v2_home.numeric_kinds)


def test_metadata_carries_class_labels(
    stub: pb_grpc.GRPCInferenceServiceStub, v2_home: V2Home
) -> None:
    found = stub.ModelMetadata(pb.ModelMetadataRequest(name="failure"), metadata=metadata(v2_home))
    probabilities = next(o for o in found.outputs if o.name == "probabilities")
    assert json.loads(probabilities.parameters["classes"].string_param) == ["0", "1"]
    assert list(probabilities.shape) == [-1, 2]


# -- infer -----------------------------------------------------------------------------------------


def test_infer_raw_per_feature_tensors_matches_serving(
    triton: grpcclient.InferenceServerClient, v2_home: V2Home
) -> None:
    inputs = feature_inputs(grpcclient, v2_home, v2_home.rows)
    result = triton.infer("failure", inputs, request_id="g-1", headers=dict(metadata(v2_home)))
    expected = v2_home.container.serving.predict("failure", v2_home.rows).outputs
    assert_matches(result, expected)
    response = result.get_response()
    assert (response.id, response.model_version) == ("g-1", "1")
    assert len(json.loads(response.parameters["prediction_ids"].string_param)) == len(expected)


def test_infer_one_matrix_tensor_on_a_numeric_model(
    triton: grpcclient.InferenceServerClient, v2_home: V2Home
) -> None:
    inputs = [matrix_input(grpcclient, v2_home)]
    result = triton.infer("numeric", inputs, headers=dict(metadata(v2_home)))
    expected = v2_home.container.serving.predict("numeric", v2_home.numeric_rows).outputs
    assert_matches(result, expected)


def test_infer_on_one_version(triton: grpcclient.InferenceServerClient, v2_home: V2Home) -> None:
    inputs = feature_inputs(grpcclient, v2_home, v2_home.rows)
    result = triton.infer("failure", inputs, model_version="2", headers=dict(metadata(v2_home)))
    assert result.get_response().model_version == "2"
    expected = v2_home.container.serving.predict("failure", v2_home.rows, version="2").outputs
    assert_matches(result, expected)


def typed_request(home: V2Home, rows: list[dict[str, Any]]) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="failure", id="typed-1")
    request.parameters["subject_id"].string_param = "machine-7"
    for name, kind in home.kinds.items():
        values = [row[name] for row in rows]
        if kind != "numeric":
            tensor = request.inputs.add(name=name, datatype="BYTES", shape=[len(rows), 1])
            tensor.contents.bytes_contents.extend(v.encode() for v in values)
        elif name in INTEGER_FEATURES:
            tensor = request.inputs.add(name=name, datatype="INT64", shape=[len(rows)])
            tensor.contents.int64_contents.extend(values)
        else:
            tensor = request.inputs.add(name=name, datatype="FP64", shape=[len(rows), 1])
            tensor.contents.fp64_contents.extend(values)
    return request


def test_infer_typed_contents_answers_typed(
    stub: pb_grpc.GRPCInferenceServiceStub, v2_home: V2Home
) -> None:
    response = stub.ModelInfer(typed_request(v2_home, v2_home.rows), metadata=metadata(v2_home))
    assert response.id == "typed-1" and not response.raw_output_contents
    outputs = {o.name: o for o in response.outputs}
    expected = v2_home.container.serving.predict("failure", v2_home.rows).outputs
    assert list(outputs["prediction"].contents.int64_contents) == [
        e["prediction"] for e in expected
    ]
    labels = json.loads(outputs["probabilities"].parameters["classes"].string_param)
    want = [e["probabilities"][label] for e in expected for label in labels]
    np.testing.assert_allclose(list(outputs["probabilities"].contents.fp64_contents), want)
    assert list(outputs["probabilities"].shape) == [len(expected), 2]


def test_each_infer_lands_in_the_ledger(
    triton: grpcclient.InferenceServerClient, v2_home: V2Home
) -> None:
    inputs = feature_inputs(grpcclient, v2_home, v2_home.rows[:3])
    result = triton.infer("failure", inputs, headers=dict(metadata(v2_home)))
    ids = json.loads(result.get_response().parameters["prediction_ids"].string_param)
    c = v2_home.container
    assert c.ledger is not None and c.ledger.flush()
    for pid, row in zip(ids, v2_home.rows[:3], strict=True):
        record = c.predictions.get(pid)
        assert record is not None and record.version == "1"
        assert record.inputs == pytest.approx(row)


# -- errors ----------------------------------------------------------------------------------------


def _replace(inputs: list[Any], name: str, array: np.ndarray, datatype: str) -> list[Any]:
    tensor = grpcclient.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array)
    return [tensor if t.name() == name else t for t in inputs]


BAD_REQUESTS: dict[str, tuple[Callable[[list[Any]], list[Any]], str]] = {
    "wrong shape": (
        lambda inputs: _replace(inputs, "Torque [Nm]", np.ones((7, 2)), "FP64"),
        "input 'Torque [Nm]': shape is [7, 2], expected [N, 1] or [N]",
    ),
    "wrong dtype": (
        lambda inputs: _replace(inputs, "Type", np.ones((7, 1), dtype=np.float32), "FP32"),
        "input 'Type': datatype is FP32, expected BYTES",
    ),
    "missing input": (
        lambda inputs: [t for t in inputs if t.name() != "Type"],
        "input 'Type': missing (BYTES [N, 1], a categorical feature)",
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_a_request_that_does_not_fit_is_invalid_argument_naming_the_input(
    triton: grpcclient.InferenceServerClient, v2_home: V2Home, case: str
) -> None:
    change, fragment = BAD_REQUESTS[case]
    inputs = change(feature_inputs(grpcclient, v2_home, v2_home.rows))
    with pytest.raises(InferenceServerException) as caught:
        triton.infer("failure", inputs, headers=dict(metadata(v2_home)))
    assert code_of(caught.value) == "INVALID_ARGUMENT"
    assert fragment in caught.value.message()


def test_raw_bytes_that_do_not_fit_the_shape_are_invalid_argument(
    stub: pb_grpc.GRPCInferenceServiceStub, v2_home: V2Home
) -> None:
    request = pb.ModelInferRequest(model_name="numeric")
    request.inputs.add(name="input-0", datatype="FP64", shape=[1, 5])
    request.raw_input_contents.append(np.ones(4).tobytes())
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(request, metadata=metadata(v2_home))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "input 'input-0': shape [1, 5] of FP64 needs 40 bytes (5 × 8), got 32" in str(
        caught.value.details()
    )


def test_unknown_model_or_version_is_not_found(
    triton: grpcclient.InferenceServerClient, v2_home: V2Home
) -> None:
    inputs = feature_inputs(grpcclient, v2_home, v2_home.rows)
    headers = dict(metadata(v2_home))
    for model, version in [("no-such-model", ""), ("failure", "99")]:
        with pytest.raises(InferenceServerException) as caught:
            triton.infer(model, inputs, model_version=version, headers=headers)
        assert code_of(caught.value) == "NOT_FOUND"
        with pytest.raises(InferenceServerException) as caught:
            triton.get_model_metadata(model, version, headers=headers)
        assert code_of(caught.value) == "NOT_FOUND"


def test_metadata_and_infer_need_a_predict_key(
    triton: grpcclient.InferenceServerClient, v2_home: V2Home
) -> None:
    inputs = feature_inputs(grpcclient, v2_home, v2_home.rows)
    calls: list[Callable[[dict[str, str] | None], Any]] = [
        lambda h: triton.infer("failure", inputs, headers=h),
        lambda h: triton.get_model_metadata("failure", headers=h),
        lambda h: triton.get_server_metadata(headers=h),
    ]
    for call in calls:
        for headers, code in [
            (None, "UNAUTHENTICATED"),
            ({"authorization": "Bearer ll_nope_nope"}, "UNAUTHENTICATED"),
            (dict(metadata(v2_home, Role.READER)), "PERMISSION_DENIED"),
        ]:
            with pytest.raises(InferenceServerException) as caught:
                call(headers)
            assert code_of(caught.value) == code
        call({"x-api-key": v2_home.tokens[Role.OPERATOR]})


def test_a_taken_port_is_refused(v2_home: V2Home, grpc_url: str) -> None:
    taken = int(grpc_url.rsplit(":", 1)[1])
    from learnloop.core.errors import Conflict

    with pytest.raises(Conflict, match="cannot bind"):
        GrpcInferenceServer(v2_home.container, "127.0.0.1", taken).start()


# -- learnloop serve -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_learnloop_serve_starts_grpc_when_the_port_is_set(tmp_path: Path) -> None:
    http_port, grpc_port = free_port(), free_port()
    env = {
        **os.environ,
        "LEARNLOOP_HOME": str(tmp_path / "home"),
        "LEARNLOOP_GRPC__PORT": str(grpc_port),
        "LEARNLOOP_JOBS__WORKERS": "0",
    }
    command = [sys.executable, "-m", "learnloop", "serve", "--port", str(http_port)]
    proc = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{grpc_port}")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{http_port}/v2/health/live", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        assert client.is_server_live() and client.is_server_ready()
        with pytest.raises(InferenceServerException) as caught:
            client.get_server_metadata()
        assert code_of(caught.value) == "UNAUTHENTICATED"
    finally:
        client.close()
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode in (0, 130), output  # uvicorn re-raises the SIGINT it handled
    assert f"gRPC (Open Inference Protocol v2) on 127.0.0.1:{grpc_port}" in output
    assert '"msg": "gRPC server stopped"' in output

"""The OpenAPI schema says what the server answers, and the docs pages work offline."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from learnloop.api.errors import ErrorBody, OipErrorBody
from learnloop.api.openapi import asset_dir
from tests.api.conftest import Served

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
OIP_ERROR_REF = {"$ref": "#/components/schemas/OipErrorBody"}
BINARY = {"type": "string", "format": "binary"}


@pytest.fixture(scope="module")
def spec(served: Served) -> dict[str, Any]:
    response = served.client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
    ]
    assert len(found) > 80  # every route, families' included
    return found


def json_schema(response: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = response["content"]["application/json"]["schema"]
    return schema


# -- security -------------------------------------------------------------------------------------


def test_the_schema_declares_both_ways_of_sending_a_key(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= schemes["bearerAuth"].items()
    assert {"type": "apiKey", "in": "header", "name": "X-API-Key"}.items() <= schemes[
        "apiKeyAuth"
    ].items()


def test_an_authenticated_operation_declares_its_security_and_401_403(
    spec: dict[str, Any],
) -> None:
    predict = spec["paths"]["/v1/models/{name}/predict"]["post"]
    assert predict["security"] == [{"bearerAuth": []}, {"apiKeyAuth": []}]
    for code in ("401", "403"):
        assert json_schema(predict["responses"][code]) == ERROR_REF
    assert "WWW-Authenticate" in predict["responses"]["401"]["headers"]
    assert "`predict`" in predict["responses"]["403"]["description"]


def test_security_follows_the_auth_dependency_of_every_route(spec: dict[str, Any]) -> None:
    public = {
        ("GET", "/v1/health"),
        ("GET", "/v2/health/live"),
        ("GET", "/v2/health/ready"),
        ("GET", "/v2/models/{name}/ready"),
        ("GET", "/v2/models/{name}/versions/{version}/ready"),
    }
    for method, path, op in operations(spec):
        if (method, path) in public:
            assert "security" not in op, (method, path)
            assert "401" not in op["responses"], (method, path)
        else:
            assert op.get("security") == [{"bearerAuth": []}, {"apiKeyAuth": []}], (method, path)
            assert {"401", "403", "404", "409", "503"} <= set(op["responses"]), (method, path)
    # a family's routes get the same without being listed anywhere
    kt = spec["paths"]["/v1/kt/{model}/recommend"]["post"]
    assert "security" in kt and "403" in kt["responses"]


# -- error bodies ---------------------------------------------------------------------------------


def test_422_is_the_error_body_the_server_sends(served: Served, spec: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert "ErrorBody" in spec["components"]["schemas"]
    declared = [op["responses"]["422"] for _, _, op in operations(spec) if "422" in op["responses"]]
    assert len(declared) > 50
    assert all(json_schema(response) == ERROR_REF for response in declared)
    body = served.client.post("/v1/keys", json={"role": "root"}, headers=served.auth())
    assert body.status_code == 422
    assert ErrorBody.model_validate(body.json()).error.issues[0].loc.endswith("role")


def test_inputs_bodies_and_path_parameters_declare_their_errors(spec: dict[str, Any]) -> None:
    for method, path, op in operations(spec):
        codes = set(op["responses"])
        oip = path.startswith("/v2")
        if op.get("parameters") or "requestBody" in op:
            assert ("400" if oip else "422") in codes, (method, path)
        if "requestBody" in op:
            assert json_schema(op["responses"]["413"]) == ERROR_REF, (method, path)
        if "{" in path:
            assert "404" in codes, (method, path)
        for code, response in op["responses"].items():
            assert "X-Request-ID" in response["headers"], (method, path, code)
            if code.startswith("4") and code != "413":
                assert json_schema(response) == (OIP_ERROR_REF if oip else ERROR_REF), (
                    method,
                    path,
                    code,
                )


def test_every_keyless_answer_is_declared_with_its_body(
    served: Served, spec: dict[str, Any]
) -> None:
    """What the server answers a caller without a key (401 for most, the health routes' 200 and
    the readiness routes' 404 for an unknown model) is declared, with a body that fits."""
    checked = 0
    for method, template, op in operations(spec):
        path = re.sub(r"\{[^}]+\}", "nosuchthing", template)
        response = served.client.request(method, path)
        code = str(response.status_code)
        assert code in op["responses"], (method, template, code)
        assert "x-request-id" in response.headers
        if response.status_code >= 400:
            model = OipErrorBody if template.startswith("/v2") else ErrorBody
            model.model_validate(response.json())
            checked += 1
    assert checked > 80


# -- bodies that are not JSON ---------------------------------------------------------------------


def test_the_dataset_upload_declares_its_raw_body(spec: dict[str, Any]) -> None:
    body = spec["paths"]["/v1/datasets"]["post"]["requestBody"]
    assert body["required"] is True
    content = body["content"]
    assert {"text/csv", "text/tab-separated-values", "application/vnd.apache.parquet"} <= set(
        content
    )
    assert all(media["schema"] == BINARY for media in content.values())


def test_batch_results_are_declared_as_csv_or_parquet(spec: dict[str, Any]) -> None:
    ok = spec["paths"]["/v1/batch/{job_id}/results"]["get"]["responses"]["200"]
    assert set(ok["content"]) == {"text/csv", "application/vnd.apache.parquet"}
    assert all(media["schema"] == BINARY for media in ok["content"].values())


def test_other_non_json_answers_are_declared(spec: dict[str, Any]) -> None:
    infer = spec["paths"]["/v2/models/{name}/infer"]["post"]
    assert set(infer["requestBody"]["content"]) == {"application/json", "application/octet-stream"}
    assert "inputs" in infer["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert "application/octet-stream" in infer["responses"]["200"]["content"]
    drift = spec["paths"]["/v1/drift/report/{model}"]["get"]["responses"]["200"]
    assert {"application/json", "text/html"} <= set(drift["content"])
    feedback = spec["paths"]["/v1/feedback"]["post"]["responses"]
    assert {"200", "201"} <= set(feedback)  # 200 answers a duplicate
    for path in ("/v1/ready", "/v2/health/ready", "/v2/models/{name}/ready"):
        assert "503" in spec["paths"][path]["get"]["responses"], path


# -- 405 ------------------------------------------------------------------------------------------


def test_405_names_every_method_of_the_path_in_allow(served: Served) -> None:
    response = served.client.patch("/v1/models", headers=served.auth())
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "POST"}
    assert ErrorBody.model_validate(response.json()).error.type == "HTTPError"
    alias = served.client.patch("/v1/models/failure/aliases/champion", headers=served.auth())
    assert set(alias.headers["Allow"].split(", ")) == {"GET", "PUT", "DELETE"}


# -- docs pages -----------------------------------------------------------------------------------


def assets_of(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_nothing_from_the_internet(
    bare_client: Callable[..., AbstractContextManager[TestClient]], page: str
) -> None:
    with bare_client() as client:
        html = client.get(page)
        assert html.status_code == 200
        assert not re.search(r"https?://", html.text), re.findall(r"https?://\S+", html.text)
        assets = assets_of(html.text)
        assert any(a.endswith(".js") for a in assets)
        for url in assets:
            asset = client.get(url)
            assert asset.status_code == 200, url
            if url.endswith(".js"):
                assert "javascript" in asset.headers["content-type"]
                assert len(asset.content) > 100_000  # the real bundle, not a stub
            elif url.endswith(".css"):
                assert asset.headers["content-type"].startswith("text/css")
        redirect = client.get("/docs/oauth2-redirect")
        assert redirect.status_code == 200
        assert not re.search(r"https?://", redirect.text)
        assert client.get("/docs/assets/../openapi.py").status_code == 404
        assert client.get("/docs/assets/nothing.js").status_code == 404


def test_the_installed_package_carries_the_assets() -> None:
    folder = asset_dir()
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        assert (folder / name).stat().st_size > 10_000, name

"""API keys and roles over HTTP: the role matrix, 401s, header styles, revocation, hashing."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from learnloop.core.auth import ROLE_PERMISSIONS, Permission, Role
from tests.api.conftest import Served

# The role table written out once: a change to ROLE_PERMISSIONS must change this too.
EXPECTED_PERMISSIONS: dict[str, set[str]] = {
    "admin": {"read", "predict", "ingest", "write", "admin"},
    "operator": {"read", "predict", "ingest", "write"},
    "ingest": {"predict", "ingest"},
    "reader": {"read"},
}


@dataclass(frozen=True)
class Probe:
    """One request that needs ``permission``, and the status it gets once that is granted."""

    name: str
    permission: Permission
    method: str
    path: str
    granted: int
    json: Any = None


def probes(served: Served) -> dict[str, Probe]:
    rows = served.rows[:1]
    job = served.train_job_id
    model = served.model
    listed = [
        Probe("list-models", Permission.READ, "GET", "/v1/models", 200),
        Probe("list-jobs", Permission.READ, "GET", "/v1/jobs", 200),
        Probe("alias-history", Permission.READ, "GET", f"/v1/models/{model}/aliases/history", 200),
        Probe(
            "predict",
            Permission.PREDICT,
            "POST",
            f"/v1/models/{model}/predict",
            200,
            {"inputs": rows},
        ),
        Probe(
            "set-alias",
            Permission.WRITE,
            "PUT",
            f"/v1/models/{model}/aliases/matrix",
            200,
            {"version": "1"},
        ),
        Probe(
            "create-model",
            Permission.WRITE,
            "POST",
            "/v1/models",
            201,
            {"name": model, "family": "tabular"},
        ),
        # The train job is finished: a caller allowed to write gets past auth to the 409.
        Probe("cancel-job", Permission.WRITE, "POST", f"/v1/jobs/{job}/cancel", 409),
        Probe(
            "create-key",
            Permission.ADMIN,
            "POST",
            "/v1/keys",
            201,
            {"role": "reader", "name": "matrix"},
        ),
        Probe("list-keys", Permission.ADMIN, "GET", "/v1/keys", 200),
        Probe("audit", Permission.ADMIN, "GET", "/v1/audit", 200),
    ]
    return {p.name: p for p in listed}


PROBE_NAMES = [
    "list-models",
    "list-jobs",
    "alias-history",
    "predict",
    "set-alias",
    "create-model",
    "cancel-job",
    "create-key",
    "list-keys",
    "audit",
]


def test_role_table_is_the_documented_one() -> None:
    table = {role.value: {p.value for p in perms} for role, perms in ROLE_PERMISSIONS.items()}
    assert table == EXPECTED_PERMISSIONS


@pytest.mark.parametrize("role", list(Role), ids=str)
@pytest.mark.parametrize("probe_name", PROBE_NAMES)
def test_each_role_gets_exactly_what_the_table_grants(
    served: Served, role: Role, probe_name: str
) -> None:
    probe = probes(served)[probe_name]
    allowed = probe.permission in ROLE_PERMISSIONS[role]
    assert allowed == (probe.permission.value in EXPECTED_PERMISSIONS[role.value])
    response = served.client.request(
        probe.method, probe.path, json=probe.json, headers=served.auth(role)
    )
    if allowed:
        assert response.status_code == probe.granted, response.text
    else:
        assert response.status_code == 403, response.text
        error = response.json()["error"]
        assert error["type"] == "Forbidden"
        may = [r.value for r in Role if probe.permission in ROLE_PERMISSIONS[r]]
        assert f"may not {probe.permission.value}" in error["message"]
        assert ", ".join(may) in error["message"]


def test_the_probes_cover_every_permission_a_route_checks(served: Served) -> None:
    covered = {p.permission for p in probes(served).values()}
    assert set(PROBE_NAMES) == set(probes(served))
    # No route requires INGEST yet; every other permission is probed.
    assert covered == set(Permission) - {Permission.INGEST}


def test_no_key_is_401_with_a_challenge(served: Served) -> None:
    response = served.client.get("/v1/models")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    body = response.json()
    assert body["error"]["type"] == "Unauthorized"
    assert "missing API key" in body["error"]["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer ll_deadbeef_not-a-real-secret"},
        {"X-API-Key": "ll_deadbeef_not-a-real-secret"},
        {"Authorization": "Bearer "},
    ],
    ids=["bearer", "x-api-key", "empty-bearer"],
)
def test_a_garbage_key_is_401(served: Served, headers: dict[str, str]) -> None:
    response = served.client.get("/v1/models", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["type"] == "Unauthorized"


@pytest.mark.parametrize(
    "header",
    [
        lambda t: {"Authorization": f"Bearer {t}"},
        lambda t: {"Authorization": f"bearer {t}"},
        lambda t: {"X-API-Key": t},
    ],
    ids=["bearer", "bearer-lowercase", "x-api-key"],
)
def test_both_header_styles_authenticate(
    served: Served, header: Callable[[str], dict[str, str]]
) -> None:
    reader = served.tokens[Role.READER]
    assert served.client.get("/v1/models", headers=header(reader)).status_code == 200
    # The same header style carries the role too: a reader may not list keys.
    assert served.client.get("/v1/keys", headers=header(reader)).status_code == 403


def test_a_revoked_key_is_refused_at_once(served: Served) -> None:
    client = served.client
    created = client.post(
        "/v1/keys", json={"role": "operator", "name": "short-lived"}, headers=served.auth()
    )
    assert created.status_code == 201
    key = created.json()
    assert key["role"] == "operator"
    assert key["created_by"] == served.key_names[Role.ADMIN]
    assert re.fullmatch(rf"ll_{key['id']}_\S+", key["key"])
    mine = {"X-API-Key": key["key"]}
    assert client.get("/v1/models", headers=mine).status_code == 200  # now cached

    revoked = client.delete(f"/v1/keys/{key['id']}", headers=served.auth())
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None

    again = client.get("/v1/models", headers=mine)
    assert again.status_code == 401
    assert "revoked" in again.json()["error"]["message"]
    listed = {k["id"]: k for k in client.get("/v1/keys", headers=served.auth()).json()}
    assert listed[key["id"]]["revoked_at"] is not None
    assert "key" not in listed[key["id"]]  # the secret is shown only on creation


def test_revoking_an_unknown_key_is_404(served: Served) -> None:
    response = served.client.delete("/v1/keys/nosuchkey", headers=served.auth())
    assert response.status_code == 404
    assert "nosuchkey" in response.json()["error"]["message"]


def test_creating_a_key_with_an_unknown_role_is_422(served: Served) -> None:
    response = served.client.post("/v1/keys", json={"role": "root"}, headers=served.auth())
    assert response.status_code == 422
    assert response.json()["error"]["issues"][0]["loc"] == "body.role"


def test_health_needs_no_key(served: Served) -> None:
    response = served.client.get("/v1/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def schema_operations(client: TestClient) -> list[tuple[str, str]]:
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return [
        (method.upper(), path)
        for path, operations in paths.items()
        for method in operations
        if path.startswith("/v1") and path != "/v1/health"
    ]


def test_every_other_v1_route_in_the_schema_needs_a_key(served: Served) -> None:
    operations = schema_operations(served.client)
    assert len(operations) >= 20  # the iteration below is not vacuous
    assert ("POST", "/v1/models/{name}/predict") in operations
    failures = []
    for method, template in operations:
        path = re.sub(r"\{[^}]+\}", "dummy", template)
        response = served.client.request(method, path)
        if response.status_code != 401 or "WWW-Authenticate" not in response.headers:
            failures.append(f"{method} {template}: {response.status_code}")
    assert failures == []


def test_without_auth_a_request_without_key_passes(
    bare_client: Callable[..., AbstractContextManager[TestClient]],
) -> None:
    with bare_client(auth_enabled=False) as client:
        assert client.get("/v1/jobs").status_code == 200
        # The caller is the local operator, who holds every permission (admin routes too).
        created = client.post("/v1/keys", json={"role": "reader"})
        assert created.status_code == 201
        assert created.json()["created_by"] == "local"
        assert client.get("/v1/audit").status_code == 200


def test_with_auth_the_same_fresh_app_refuses(
    bare_client: Callable[..., AbstractContextManager[TestClient]],
) -> None:
    with bare_client(auth_enabled=True) as client:
        assert client.get("/v1/jobs").status_code == 401
        assert client.post("/v1/keys", json={"role": "reader"}).status_code == 401


def test_keys_are_stored_hashed(served: Served) -> None:
    database = served.home / "learnloop.db"
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT * FROM api_keys").fetchall()
        hashes = {h for (h,) in db.execute("SELECT key_hash FROM api_keys")}
    assert len(rows) >= len(Role)
    stored = "\n".join(str(value) for row in rows for value in row)
    for role, token in served.tokens.items():
        assert token not in stored, role
        secret = token.split("_", 2)[2]  # ll_<hex id>_<secret>; the secret may hold "_"
        assert len(secret) >= 40
        assert secret not in stored, role
        assert hashlib.sha256(token.encode()).hexdigest() in hashes, role
    # Nowhere else in the database files either (WAL included).
    raw = b"".join(p.read_bytes() for p in served.home.glob("learnloop.db*"))
    for token in served.tokens.values():
        assert token.split("_", 2)[2].encode() not in raw


def test_the_created_key_response_is_the_only_place_the_secret_appears(served: Served) -> None:
    created = served.client.post("/v1/keys", json={"role": "ingest"}, headers=served.auth())
    token = created.json()["key"]
    ingest = {"Authorization": f"Bearer {token}"}
    probe = served.client.post(
        f"/v1/models/{served.model}/predict", json={"inputs": served.rows[:1]}, headers=ingest
    )
    assert probe.status_code == 200
    audit = served.client.get("/v1/audit", params={"action": "key.create"}, headers=served.auth())
    assert audit.status_code == 200
    assert any(e["target"] == f"key:{created.json()['id']}" for e in audit.json())
    assert token not in audit.text

"""No API route reads or writes a file outside the configured import folders.

Every request field that names a file is found in the OpenAPI schema (so a route added later
with a path field fails here until it is covered), and each is tried with absolute paths, ``..``,
symlinks (file and folder), URL-encoded and URL forms. Only operators and admins may name files;
job errors show clients the message, never a traceback or a server path.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from learnloop.core.auth import Role
from tests.api.conftest import Served

# (method, route, where the file path goes in the body)
PATH_FIELDS = {("POST", "/v1/batch", "path"), ("POST", "/v1/jobs", "payload.path")}


def _fields(spec: dict[str, Any], schema: dict[str, Any], seen: set[str]) -> set[str]:
    """Property names of a request schema, following $refs."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return set()
        seen.add(name)
        schema = spec["components"]["schemas"][name]
    found = set(schema.get("properties", {}))
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key, []):
            found |= _fields(spec, part, seen)
    for prop in schema.get("properties", {}).values():
        found |= _fields(spec, prop, seen)
    if "items" in schema:
        found |= _fields(spec, schema["items"], seen)
    return found


def test_the_routes_that_take_a_file_path_are_the_ones_tested(served: Served) -> None:
    spec = served.client.get("/openapi.json").json()
    taking = set()
    for route, ops in spec["paths"].items():
        for method, op in ops.items():
            names = {p["name"] for p in op.get("parameters", [])}
            for content in op.get("requestBody", {}).get("content", {}).values():
                names |= _fields(spec, content.get("schema", {}), set())
            if any(
                n in ("path", "file", "filename", "dir", "folder") or n.endswith("_path")
                for n in names
            ):
                taking.add((method.upper(), route))
    # POST /v1/jobs takes any payload: its batch_predict payload carries `path`
    assert taking | {("POST", "/v1/jobs")} == {(m, r) for m, r, _ in PATH_FIELDS}


@pytest.fixture(scope="module")
def files(served: Served, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    imports = served.home / "imports"
    assert imports.is_dir() and served.container.files.roots == (imports.resolve(),)
    rows = pd.DataFrame(served.rows)
    inside = imports / "batch-in.csv"
    rows.to_csv(inside, index=False)
    outside_dir = tmp_path_factory.mktemp("outside")
    outside = outside_dir / "secret.csv"
    rows.to_csv(outside, index=False)  # readable, well-formed: only the rule keeps it out
    (imports / "escape.csv").symlink_to(outside)
    (imports / "elsewhere").symlink_to(outside_dir)
    (imports / "broken.csv").write_text('a,b\n"unterminated\n')
    return {"inside": inside, "outside": outside}


def _body(route: str, served: Served, path: str) -> dict[str, Any]:
    batch = {"model": served.model, "path": path, "format": "csv"}
    return batch if route == "/v1/batch" else {"kind": "batch_predict", "payload": batch}


@pytest.mark.parametrize(("method", "route", "field"), sorted(PATH_FIELDS))
def test_paths_outside_the_import_folders_are_refused(
    served: Served, files: dict[str, Path], method: str, route: str, field: str
) -> None:
    outside = files["outside"]
    attempts = [
        str(outside),
        f"../{outside.parent.name}/secret.csv",
        f"../../{outside.parent.parent.name}/{outside.parent.name}/secret.csv",
        "escape.csv",
        "elsewhere/secret.csv",
        f"%2e%2e/{outside.parent.name}/secret.csv",
        f"..%2f{outside.parent.name}%2fsecret.csv",
        f"file://{outside}",
        "batch-in.csv\x00",
        "/etc/passwd",
        str(outside.parent),
    ]
    before = len(served.container.jobs.list(kind="batch_predict", limit=1000))
    for attempt in attempts:
        r = served.client.request(
            method, route, json=_body(route, served, attempt), headers=served.auth(Role.ADMIN)
        )
        assert r.status_code == 422, (attempt, r.text)
        issue = r.json()["error"]["issues"][0]
        # a NUL is refused wherever it is in a body: in a job's free-form payload, at `payload`
        nul_in_payload = "\x00" in attempt and field == "payload.path"
        assert issue["loc"].endswith("payload" if nul_in_payload else field), issue
        echoed = r.text.replace(json.dumps(attempt)[1:-1], "")  # the client's own text may echo
        assert str(served.home) not in echoed and str(outside.parent) not in echoed
    assert len(served.container.jobs.list(kind="batch_predict", limit=1000)) == before


def _wait(served: Served, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = served.client.get(f"/v1/jobs/{job_id}", headers=served.auth()).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def _batch(served: Served, path: str) -> dict[str, Any]:
    """Submit a batch job over ``path`` with an admin key and wait for it to end."""
    r = served.client.post(
        "/v1/batch", json=_body("/v1/batch", served, path), headers=served.auth()
    )
    assert r.status_code == 202, r.text
    return _wait(served, r.json()["id"])


def test_a_file_inside_the_import_folder_is_predicted_and_named_as_given(
    served: Served, files: dict[str, Path]
) -> None:
    job = _batch(served, "batch-in.csv")
    assert job["status"] == "succeeded", job["error"]
    assert job["result"]["rows"] == len(served.rows)
    assert job["result"]["results"] == f"/v1/batch/{job['id']}/results"
    assert str(served.home) not in str(job)


def test_only_operators_and_admins_may_name_files(served: Served, files: dict[str, Path]) -> None:
    body = _body("/v1/batch", served, "batch-in.csv")
    r = served.client.post("/v1/batch", json=body, headers=served.auth(Role.INGEST))
    assert r.status_code == 403, r.text
    assert "operator" in r.json()["error"]["message"]
    r = served.client.post("/v1/batch", json=body, headers=served.auth(Role.OPERATOR))
    assert r.status_code == 202, r.text
    dataset = {"model": served.model, "dataset_id": served.dataset_id}
    r = served.client.post("/v1/batch", json=dataset, headers=served.auth(Role.INGEST))
    assert r.status_code == 202, r.text  # snapshots stay open to prediction keys


def test_a_failed_job_shows_the_message_without_traceback_or_server_paths(
    served: Served, files: dict[str, Path]
) -> None:
    job = _batch(served, "broken.csv")
    assert job["status"] == "failed"
    assert "broken.csv" in job["error"]
    assert "traceback" not in job and "Traceback" not in str(job)
    assert str(served.home) not in str(job) and "site-packages" not in str(job)
    # the whole story is in the server's own record of the job
    stored = served.container.jobs.get(job["id"])
    assert stored.traceback and "Traceback" in stored.traceback

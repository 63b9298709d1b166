"""Timestamps from clients are ISO 8601 only (``core/times.py``), and the alias lookup answers
404 for an alias that is not set — now or at the time asked."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from learnloop.core.auth import Role
from learnloop.core.times import MAX_LENGTH, Timestamp
from tests.api.conftest import Served

REFUSED = ["0", "0.5", "1700000000", "-1", "1e9", "yesterday", "2024-13-01", "x" * 65]
ACCEPTED = ["2024-05-01", "2024-05-01T12:00:00Z", "2024-05-01T14:00:00+02:00", "2024-05-01T12:00"]


def where(served: Served) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(method, path, field, other values) for every time field a client sends."""
    m = served.model
    return [
        ("GET", f"/v1/models/{m}/aliases/champion", "query.at", {}),
        ("GET", f"/v1/experiments/{m}", "query.since", {}),
        ("GET", "/v1/feedback", "query.since", {}),
        ("GET", "/v1/feedback/metrics", "query.since", {}),
        ("GET", "/v1/feedback/metrics", "query.until", {}),
        ("GET", "/v1/feedback/labelled", "query.since", {"model": m}),
        ("GET", "/v1/feedback/labelled", "query.until", {"model": m}),
        ("GET", f"/v1/models/{m}/error-patterns", "query.since", {}),
        ("GET", f"/v1/models/{m}/error-patterns", "query.until", {}),
        ("POST", f"/v1/kt/{m}/answers/reconcile", "query.since", {}),
        ("POST", "/v1/active-learning/select", "body.since", {"model": m, "budget": 1}),
        (
            "POST",
            f"/v1/kt/{m}/learners/l1/answers",
            "body.answers.0.answered_at",
            {"answers": [{"correct": 1}]},
        ),
    ]


def send(served: Served, method: str, path: str, field: str, value: Any, rest: dict) -> Any:
    kind, *names = field.split(".")
    if kind == "query":
        return served.client.request(
            method, path, params={**rest, names[0]: value}, headers=served.auth()
        )
    body = {**rest}
    if names[0] == "answers":  # body.answers.0.answered_at
        body["answers"] = [{**body["answers"][0], names[2]: value}]
    else:
        body[names[0]] = value
    return served.client.request(method, path, json=body, headers=served.auth())


@pytest.mark.parametrize("value", REFUSED)
def test_a_time_that_is_not_iso_8601_is_422_naming_the_field(served: Served, value: str) -> None:
    for method, path, field, rest in where(served):
        response = send(served, method, path, field, value, rest)
        assert response.status_code == 422, (path, field, value, response.text)
        issues = response.json()["error"]["issues"]
        assert [i["loc"] for i in issues] == [field], (path, issues)
        assert "ISO 8601" in issues[0]["message"] or "characters" in issues[0]["message"]


def test_numbers_in_a_json_body_are_refused_too(served: Served) -> None:
    for value in (0, 0.5, 1_700_000_000, True):
        r = served.client.post(
            "/v1/active-learning/select",
            json={"model": served.model, "budget": 1, "since": value},
            headers=served.auth(),
        )
        assert r.status_code == 422, (value, r.text)
        assert r.json()["error"]["issues"][0]["loc"] == "body.since"


@pytest.mark.parametrize("value", ACCEPTED)
def test_iso_dates_and_times_with_or_without_offset_are_accepted(
    served: Served, value: str
) -> None:
    for method, path, field, rest in where(served):
        response = send(served, method, path, field, value, rest)
        assert response.status_code < 500, (path, response.text)
        if response.status_code >= 400:  # e.g. a kt route on a tabular model, an unset alias
            issues = response.json()["error"]["issues"]
            assert field not in [i["loc"] for i in issues], (path, issues)


def test_a_time_without_offset_is_read_in_the_server_zone() -> None:
    adapter = TypeAdapter(Timestamp)
    naive = adapter.validate_python("2024-05-01T12:00:00")
    assert naive == datetime(2024, 5, 1, 12).astimezone() and naive.tzinfo is not None
    assert adapter.validate_python("2024-05-01T12:00:00Z") == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert adapter.validate_python("2024-05-01t12:00:00z") == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert adapter.validate_python(" 2024-05-01 ") == datetime(2024, 5, 1).astimezone()
    assert adapter.validate_python(date(2024, 5, 1)) == datetime(2024, 5, 1).astimezone()
    for bad in ("0", 0, 1.5, None, "9999-12-31T23:59:59-14:00", "2024-05-01" + " " * MAX_LENGTH):
        with pytest.raises(ValidationError):
            adapter.validate_python(bad)


def test_the_openapi_says_what_format_a_time_has(served: Served) -> None:
    spec = served.client.get("/openapi.json").json()
    params = spec["paths"]["/v1/feedback/metrics"]["get"]["parameters"]
    since = next(p for p in params if p["name"] == "since")
    schema = next(s for s in since["schema"]["anyOf"] if s.get("type") == "string")
    assert schema["maxLength"] == MAX_LENGTH and schema["format"] == "date-time"
    assert "ISO 8601" in schema["description"] and "epoch" in schema["description"]


def test_an_alias_that_is_not_set_is_404(served: Served) -> None:
    client, model, reader = served.client, served.model, served.auth(Role.READER)
    r = client.get(f"/v1/models/{model}/aliases/never-set", headers=reader)
    assert r.status_code == 404, r.text
    error = r.json()["error"]
    assert error["type"] == "NotFound" and f"{model}@never-set" in error["message"]
    r = client.get("/v1/models/no-such-model/aliases/champion", headers=reader)
    assert r.status_code == 404 and "no-such-model" in r.json()["error"]["message"]


def test_an_alias_asked_at_a_time_it_was_not_set_is_404_saying_so(served: Served) -> None:
    client, model = served.client, served.model
    assert (
        client.put(
            f"/v1/models/{model}/aliases/dated",
            json={"version": "1", "reason": "test"},
            headers=served.auth(),
        ).status_code
        == 200
    )
    before = (datetime.now(UTC) - timedelta(days=365)).isoformat()
    r = client.get(
        f"/v1/models/{model}/aliases/dated", params={"at": before}, headers=served.auth()
    )
    assert r.status_code == 404, r.text
    assert f"{model}@dated' was not set at" in r.json()["error"]["message"]
    now = client.get(f"/v1/models/{model}/aliases/dated", headers=served.auth())
    assert now.status_code == 200 and now.json()["version"] == "1"
    later = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
    then = client.get(
        f"/v1/models/{model}/aliases/dated", params={"at": later}, headers=served.auth()
    )
    assert then.status_code == 200 and then.json()["version"] == "1"
    client.delete(f"/v1/models/{model}/aliases/dated", headers=served.auth())

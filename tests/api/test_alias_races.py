"""Alias routes under concurrency and against deployments: moves from many clients at once form
one history chain, a no-op writes nothing, rollback with nothing to return to is 409, and an
alias a deployment serves cannot be deleted (409 naming the deployment)."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import pandas as pd
import pytest

from learnloop.core.auth import Role
from tests.api.conftest import Served
from tests.conftest import train_version

MODEL = "races"


@pytest.fixture(scope="module")
def races(served: Served, ai4i_sample: pd.DataFrame) -> Served:
    for seed in (1, 2, 3):
        train_version(served.container, ai4i_sample, model=MODEL, seed=seed, n_estimators=5)
    return served


def aliases(s: Served, alias: str = "") -> str:
    return f"/v1/models/{MODEL}/aliases" + (f"/{alias}" if alias else "")


def put_alias(s: Served, alias: str, version: str, reason: str = "") -> Any:
    return s.client.put(
        aliases(s, alias), json={"version": version, "reason": reason}, headers=s.auth()
    )


def history(s: Served, alias: str) -> list[dict[str, Any]]:
    r = s.client.get(aliases(s, "history"), params={"alias": alias}, headers=s.auth(Role.READER))
    assert r.status_code == 200, r.text
    return list(r.json())


def parse(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))


def assert_chain(events: list[dict[str, Any]]) -> None:
    head = None
    for i, event in enumerate(events):
        assert event["from_version"] == head, f"event {i} does not chain: {events}"
        assert event["from_version"] != event["to_version"], f"event {i} is a no-op: {events}"
        if i:
            assert events[i - 1]["id"] < event["id"], events
            assert parse(events[i - 1]["at"]) < parse(event["at"]), events
        head = event["to_version"]


def test_twenty_concurrent_moves_chain(races: Served) -> None:
    start = threading.Barrier(20)
    answers: list[Any] = []

    def move(i: int) -> None:
        start.wait(30)
        answers.append(put_alias(races, "racing", str(i % 3 + 1), f"client {i}"))

    threads = [threading.Thread(target=move, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [r.status_code for r in answers] == [200] * 20, [r.text for r in answers]
    events = history(races, "racing")
    assert [e["from_version"] for e in events].count(None) == 1
    assert_chain(events)
    now = races.client.get(aliases(races, "racing"), headers=races.auth(Role.READER))
    assert now.json()["version"] == events[-1]["to_version"]
    # every answer is an event of the chain: its own move, or the head it found unchanged
    assert {r.json()["id"] for r in answers} <= {e["id"] for e in events}


def test_setting_the_current_version_again_writes_nothing(races: Served) -> None:
    first = put_alias(races, "steady", "2", "first")
    assert first.status_code == 200
    again = put_alias(races, "steady", "2", "again")
    assert again.status_code == 200
    assert again.json() == first.json()
    assert [e["id"] for e in history(races, "steady")] == [first.json()["id"]]
    audit = races.client.get("/v1/audit", params={"action": "alias.set"}, headers=races.auth())
    steady = [a for a in audit.json() if a["detail"].get("alias") == "steady"]
    assert [a["detail"]["reason"] for a in steady] == ["first"]


def test_rollback_with_nothing_to_roll_back_to_is_409(races: Served) -> None:
    assert put_alias(races, "lonely", "1").status_code == 200
    assert put_alias(races, "lonely", "1").status_code == 200  # a no-op, not a second version
    r = races.client.post(aliases(races, "lonely/rollback"), headers=races.auth())
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["type"] == "Conflict"
    assert error["message"] == (
        f"alias {MODEL}@lonely has no earlier version to roll back to (it points to version 1)"
    )
    assert len(history(races, "lonely")) == 1
    assert put_alias(races, "lonely", "3").status_code == 200
    back = races.client.post(aliases(races, "lonely/rollback"), headers=races.auth())
    assert back.status_code == 200 and back.json()["to_version"] == "1"


def test_deleting_an_alias_a_deployment_serves_is_409_naming_it(races: Served) -> None:
    assert put_alias(races, "champion", "1").status_code == 200
    r = races.client.delete(aliases(races, "champion"), headers=races.auth())
    assert r.status_code == 409, r.text
    assert r.json()["error"]["type"] == "Conflict"
    assert r.json()["error"]["message"] == (
        f"alias {MODEL}@champion is served by the deployment of '{MODEL}' (revision 0, "
        "implicit: arm 'champion'); change the deployment first"
    )
    predict = races.client.post(
        f"/v1/models/{MODEL}/predict", json={"inputs": races.rows[:1]}, headers=races.auth()
    )
    assert predict.status_code == 200 and predict.json()["version"] == "1"

    for alias in ("blue", "backup", "spare"):
        assert put_alias(races, alias, "2").status_code == 200
    spec = {
        "mode": "ab",
        "arms": [
            {"name": "a", "alias": "champion", "weight": 50},
            {"name": "b", "alias": "blue", "weight": 50},
        ],
        "fallback": {"chain": ["alias:backup"]},
    }
    applied = races.client.put(f"/v1/models/{MODEL}/deployment", json=spec, headers=races.auth())
    assert applied.status_code == 200, applied.text
    revision = applied.json()["revision"]
    blue = races.client.delete(aliases(races, "blue"), headers=races.auth())
    assert blue.status_code == 409
    assert f"(revision {revision}: arm 'b')" in blue.json()["error"]["message"]
    backup = races.client.delete(aliases(races, "backup"), headers=races.auth())
    assert backup.status_code == 409
    assert f"(revision {revision}: fallback 'alias:backup')" in backup.json()["error"]["message"]

    spare = races.client.delete(aliases(races, "spare"), headers=races.auth())
    assert spare.status_code == 200, spare.text
    assert (spare.json()["action"], spare.json()["from_version"]) == ("delete", "2")
    gone = races.client.get(aliases(races, "spare"), headers=races.auth(Role.READER))
    assert gone.status_code == 404, gone.text
    for alias in ("champion", "blue", "backup"):
        still = races.client.get(aliases(races, alias), headers=races.auth(Role.READER))
        assert still.json()["version"] is not None, alias

"""A hyperparameter search through the API: queued as a job, trials in a stored study, the best
version registered as challenger."""

from __future__ import annotations

from learnloop.core.auth import Role
from tests.api.conftest import TARGET, Served
from tests.conftest import LEAKS


def test_tuning_through_the_api(served: Served) -> None:
    body = {
        "family": "tabular",
        "model": "tuned",
        "dataset_id": served.dataset_id,
        "params": {"target": TARGET, "drop_columns": LEAKS, "n_estimators": 20},
        "space": {"learning_rate": {"type": "float", "low": 0.02, "high": 0.3, "log": True}},
        "n_trials": 3,
    }
    r = served.client.post("/v1/tuning/start", json=body, headers=served.auth(Role.OPERATOR))
    assert r.status_code == 202, r.text
    done = served.container.jobs.wait(r.json()["id"], 180)
    assert done.status.value == "succeeded", done.error
    result = dict(done.result or {})
    assert result["trials"] == 3 and result["version"] == "1" and result["alias"] == "challenger"
    study = served.client.get(
        f"/v1/tuning/studies/{r.json()['study']}", headers=served.auth(Role.READER)
    ).json()
    values = [t["value"] for t in study["trials"] if t["state"] == "COMPLETE"]
    assert values and max(values) == result["best_value"]
    bad = {**body, "space": {"learning_rate": {"type": "float", "low": 0.5, "high": 0.1}}}
    r = served.client.post("/v1/tuning/start", json=bad, headers=served.auth())
    assert r.status_code == 422 and "space.learning_rate" in r.text

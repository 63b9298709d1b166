"""Active learning over the real app: selection from the ledger, the labelling queue with
assignment and expiry, labels stored as feedback, stats."""

from __future__ import annotations

from datetime import timedelta

from learnloop.core.auth import Role
from learnloop.core.labels import confidence_of
from tests.api.conftest import Served


def test_select_assign_label_stats(served: Served) -> None:
    c = served.container
    rows = served.rows * 8  # 40 inputs (5 distinct rows; each prediction has its own id)
    r = served.client.post(
        f"/v1/models/{served.model}/predict",
        json={"inputs": rows, "subject_id": "al-user"},
        headers=served.auth(),
    )
    assert r.status_code == 200
    h = served.auth(Role.OPERATOR)
    sel = served.client.post(
        "/v1/active-learning/select",
        json={"model": served.model, "strategy": "uncertainty", "budget": 6},
        headers=h,
    )
    assert sel.status_code == 201, sel.text
    body = sel.json()
    assert len(body["tasks"]) == 6 and body["pool"] >= 40
    # the queued predictions are the least confident of the pool
    chosen = {t["prediction_id"] for t in body["tasks"]}
    rest = c.feedback.analytics.unlabelled_predictions(served.model)  # the queued are left out
    picked = [confidence_of(p.output) or 0.0 for p in c.predictions.get_many(list(chosen))]
    assert max(picked) <= min(confidence_of(p.output) or 0.0 for p in rest) + 1e-12
    scores = [t["score"] for t in body["tasks"]]
    assert scores == sorted(scores, reverse=True)
    again = served.client.post(
        "/v1/active-learning/select",
        json={"model": served.model, "strategy": "diversity", "budget": 6},
        headers=h,
    ).json()
    assert not chosen & {t["prediction_id"] for t in again["tasks"]}  # never queued twice

    ann = served.client.post(
        "/v1/active-learning/assign",
        json={"model": served.model, "assignee": "ann", "n": 4},
        headers=served.auth(Role.INGEST),
    ).json()["tasks"]
    bob = served.client.post(
        "/v1/active-learning/assign",
        json={"model": served.model, "assignee": "bob", "n": 4},
        headers=served.auth(Role.INGEST),
    ).json()["tasks"]
    assert len(ann) == 4 and len(bob) == 4
    assert not {t["id"] for t in ann} & {t["id"] for t in bob}
    assert all(t["status"] == "assigned" and t["expires_at"] for t in ann)

    task = ann[0]
    lab = served.client.post(
        "/v1/active-learning/label",
        json={"task_id": task["id"], "label": 1, "labeller": "ann"},
        headers=served.auth(Role.INGEST),
    )
    assert lab.status_code == 200, lab.text
    assert lab.json()["status"] == "labelled" and lab.json()["labelled_by"] == "ann"
    events = served.client.get(
        "/v1/feedback", params={"prediction_id": task["prediction_id"]}, headers=served.auth()
    ).json()
    assert [(e["type"], e["value"]) for e in events] == [("label", 1)]
    twice = served.client.post(
        "/v1/active-learning/label",
        json={"task_id": task["id"], "label": 0},
        headers=served.auth(Role.INGEST),
    )
    assert twice.status_code == 409

    stats = served.client.get(
        "/v1/active-learning/stats", params={"model": served.model}, headers=served.auth()
    ).json()
    assert stats["by_status"]["labelled"] == 1 and stats["by_status"]["assigned"] == 7
    assert stats["by_labeller"] == {"ann": 1}
    assert set(stats["by_strategy"]) == {"uncertainty", "diversity"}


def test_expired_leases_go_back_to_the_queue(served: Served) -> None:
    queue = served.container.active_learning.queue
    served.client.post(
        f"/v1/models/{served.model}/predict",
        json={"inputs": served.rows, "subject_id": "al-expiry"},
        headers=served.auth(),
    )
    served.client.post(
        "/v1/active-learning/select",
        json={"model": served.model, "strategy": "random", "budget": 3},
        headers=served.auth(),
    )
    gone = queue.claim(served.model, "slow-labeller", 100, timedelta(seconds=0))
    assert gone and all(t["assignee"] == "slow-labeller" for t in gone)
    listed = {t["id"]: t["status"] for t in queue.list(served.model, None, 1000)}
    assert {listed[t["id"]] for t in gone} == {"expired"}
    again = queue.claim(served.model, "fast-labeller", 100, timedelta(minutes=5))
    assert {t["id"] for t in gone} <= {t["id"] for t in again}


def test_bad_selection_is_422(served: Served) -> None:
    r = served.client.post(
        "/v1/active-learning/select",
        json={"model": served.model, "strategy": "psychic", "budget": 3},
        headers=served.auth(),
    )
    assert r.status_code == 422 and r.json()["error"]["issues"][0]["loc"] == "body.strategy"
    r = served.client.post(
        "/v1/active-learning/select",
        json={"model": served.model, "budget": 0},
        headers=served.auth(),
    )
    assert r.status_code == 422

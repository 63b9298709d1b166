"""The canary rollback on the online outcome: when feedback on the candidate arm is clearly
worse than on the champion arm, the policy takes the candidate out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from learnloop.core.deployments import parse_spec
from tests.conftest import train_version
from tests.e2e.test_policy_loop import MODEL, POLICY, Loop, loop  # noqa: F401

pytestmark = pytest.mark.slow


def test_worse_online_outcome_rolls_back(loop: Loop) -> None:  # noqa: F811
    c, client, h = loop.c, loop.client, loop.h
    train_version(c, loop.rows.iloc[:3000], model=MODEL, n_estimators=20, seed=5)
    policy = {
        **POLICY,
        "gates": {"metrics": []},
        "rollout": {"canary_steps": [50], "step_min_requests": 100_000},
        "rollback": {"max_error_rate": 1.0, "max_outcome_drop": 0.2, "min_outcomes": 20},
    }
    assert client.put(f"/v1/models/{MODEL}/policy", json=policy, headers=h).status_code == 200
    spec = {
        "mode": "canary",
        "arms": [{"name": "champion", "alias": "champion"}, {"name": "candidate", "version": "2"}],
        "canary": {"candidate": "candidate", "steps": [50, 100], "step": 0},
        "fallback": {"chain": ["alias:champion"]},
    }
    c.deployments.apply(MODEL, parse_spec(spec), actor="test", reason="canary by hand")
    state = {"candidate": "2", "champion": "1", "stage_since": datetime.now(UTC).isoformat()}
    c.policy.store.set_state(MODEL, "canary", state)

    loop.predict(loop.rows.iloc[3000:3600], per_request=1)
    assert c.ledger is not None and c.ledger.flush(10)
    rows = c.predictions.list(MODEL, limit=1000)
    # users like the champion's answers and dislike the candidate's
    events = [
        {"type": "thumbs", "value": "up" if r.arm == "champion" else "down", "prediction_id": r.id}
        for r in rows
    ]
    assert client.post("/v1/feedback/batch", json={"events": events}, headers=h).status_code == 201
    step = loop.tick()
    assert step["action"] == "rolled_back", c.policy.store.events(MODEL)[-1]
    last = c.policy.store.events(MODEL)[-1]
    assert "online outcome" in last["reason"]
    assert last["details"]["outcomes"]["candidate"]["mean"] == 0.0
    assert c.deployments.get(MODEL).spec.mode == "single"

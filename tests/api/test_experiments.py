"""A/B results over HTTP: traffic per arm from the ledger, outcomes from an outcome source."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pytest

from learnloop.core.auth import Role
from tests.api.conftest import Served
from tests.conftest import train_version

MODEL = "exp"


class FixedOutcomes:
    """An outcome source that knows the outcome of every prediction it was told about (the
    feedback ledger will be the real source)."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def outcomes(self, prediction_ids: Sequence[str]) -> Mapping[str, float]:
        return {i: self.values[i] for i in prediction_ids if i in self.values}


@pytest.fixture(scope="module")
def exp(served: Served, ai4i_sample: pd.DataFrame) -> Served:
    for seed in (1, 2):
        train_version(served.container, ai4i_sample, model=MODEL, seed=seed)
    body = {
        "mode": "ab",
        "arms": [
            {"name": "control", "version": "1", "weight": 50},
            {"name": "treatment", "version": "2", "weight": 50},
        ],
    }
    r = served.client.put(f"/v1/models/{MODEL}/deployment", json=body, headers=served.auth())
    assert r.status_code == 200, r.text
    return served


def test_results_without_outcomes_show_traffic_and_latency(exp: Served) -> None:
    for i in range(40):
        r = exp.client.post(
            f"/v1/models/{MODEL}/predict",
            json={"inputs": exp.rows[:1], "subject_id": f"u{i}"},
            headers=exp.auth(Role.INGEST),
        )
        assert r.status_code == 200
    body = exp.client.get(f"/v1/experiments/{MODEL}", headers=exp.auth(Role.READER)).json()
    assert body["mode"] == "ab" and body["control"] == "control"
    arms = body["arms"]
    assert arms["control"]["predictions"] + arms["treatment"]["predictions"] == 40
    assert arms["treatment"]["versions"] == ["2"] and arms["control"]["latency_ms_p50"] > 0
    # outcomes come from the feedback ledger, which holds none for these predictions yet
    assert body["winner"] is None and body["outcome_source"] == "FeedbackOutcomes"
    assert arms["control"]["outcomes"] == 0 and arms["treatment"]["outcomes"] == 0


def test_results_with_outcomes_recommend_the_better_arm(exp: Served) -> None:
    source = FixedOutcomes()
    previous, exp.container.outcomes = exp.container.outcomes, source
    try:
        ids: list[tuple[str, str]] = []
        for i in range(600):
            r = exp.client.post(
                f"/v1/models/{MODEL}/predict",
                json={"inputs": exp.rows[:1], "subject_id": f"v{i}"},
                headers=exp.auth(Role.INGEST),
            ).json()
            ids.append((r["prediction_ids"][0], r["arm"]))
        for n, (pid, arm) in enumerate(ids):  # treatment converts 60 %, control 20 %
            source.values[pid] = float(n % 5 < (3 if arm == "treatment" else 1))
        body: dict[str, Any] = exp.client.get(
            f"/v1/experiments/{MODEL}", headers=exp.auth(Role.READER)
        ).json()
    finally:
        exp.container.outcomes = previous
    comparison = body["comparisons"]["treatment"]
    assert comparison["test"] == "two_proportion_z" and comparison["effect"] > 0.3
    assert body["winner"] == "treatment" and body["confidence"] > 0.99
    assert body["outcome_source"] == "FixedOutcomes"

"""Confidence tracking and error-pattern mining on constructed ledgers with known answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from learnloop.core.feedback import FeedbackRecord
from learnloop.core.labels import join
from learnloop.core.ledger import PredictionRecord
from learnloop.loop.quality import confidence_report, error_patterns

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def record(i: int, at: datetime, p1: float, inputs: dict[str, object]) -> PredictionRecord:
    return PredictionRecord(
        id=f"p{i}",
        model="m",
        version="1",
        arm="a",
        subject_id=None,
        input_hash=str(i),
        inputs=inputs,
        output={"prediction": int(p1 > 0.5), "probabilities": {"0": 1 - p1, "1": p1}},
        latency_ms=1.0,
        cache_hit=False,
        served_by={},
        created_at=at,
    )


def label(pid: str, value: int) -> FeedbackRecord:
    return FeedbackRecord(
        id="f" + pid,
        idem_key="f" + pid,
        type="label",
        name=None,
        value=None,
        payload=value,
        prediction_id=pid,
        subject_id=None,
        model="m",
        client_ts=T0,
        received_at=T0,
    )


def test_a_confidence_shift_raises_an_alert_and_a_stable_one_does_not() -> None:
    rng = np.random.default_rng(0)
    confident = [record(i, T0, float(p), {}) for i, p in enumerate(rng.uniform(0.9, 1.0, 300))]
    later = T0 + timedelta(hours=1)
    stable = [
        record(1000 + i, later, float(p), {}) for i, p in enumerate(rng.uniform(0.9, 1.0, 300))
    ]
    unsure = [
        record(2000 + i, later, float(p), {}) for i, p in enumerate(rng.uniform(0.5, 0.7, 300))
    ]
    calm = confidence_report(confident + stable, bucket_s=3600)
    shifted = confidence_report(confident + unsure, bucket_s=3600)
    assert calm["alert"] is False and calm["latest"]["psi"] < 0.2
    assert shifted["alert"] is True and shifted["latest"]["psi"] > 1.0
    assert shifted["latest"]["mean_shift"] < -0.2 and shifted["latest"]["ks_p_value"] < 1e-6
    assert [b["count"] for b in shifted["buckets"]] == [300, 300]
    few = confidence_report(confident[:10] + unsure[:10], bucket_s=3600)
    assert few["alert"] is False  # a shift on too few predictions is not an alert


def test_error_patterns_find_the_region_where_errors_concentrate() -> None:
    rng = np.random.default_rng(1)
    predictions, events = [], []
    for i in range(600):
        temp = float(rng.uniform(290, 310))
        kind = str(rng.choice(["L", "M", "H"]))
        p = record(i, T0, 0.2, {"temp": temp, "kind": kind, "note": "ok"})
        # the model (always 0) is wrong mostly for hot type-H machines
        wrong = temp > 305 and kind == "H" and rng.random() < 0.8
        wrong = wrong or rng.random() < 0.03
        predictions.append(p)
        events.append(label(p.id, 1 if wrong else 0))
    report = error_patterns(join(predictions, events), min_support=5)
    top = report["patterns"][0]
    assert "temp > 30" in top["rule"] and "kind == 'H'" in top["rule"], top["rule"]
    assert top["lift"] > 3 and top["error_rate"] > 0.5
    assert len(top["examples"]) == 5
    assert report["confusions"][0] == {"predicted": "0", "label": "1", "count": report["errors"]}


def test_error_patterns_cluster_free_text() -> None:
    predictions, events = [], []
    texts = ["battery drains fast overnight", "screen flickers when cold", "great device"]
    for i in range(90):
        text = texts[i % 3] + f" unit {i}"
        p = record(i, T0, 0.2, {"comment": text + " " + "x" * 20})
        predictions.append(p)
        events.append(label(p.id, 0 if texts[i % 3] == "great device" else 1))
    report = error_patterns(join(predictions, events), min_support=5, top=2)
    clusters = report["text_clusters"]
    assert len(clusters) == 2 and {c["errors"] for c in clusters} == {30}
    terms = {t for c in clusters for t in c["top_terms"]}
    assert {"battery", "screen"} <= terms and "great" not in terms

"""The feedback ledger on SQLite and PostgreSQL: idempotency, group commit, the join with late
labels, outcomes for A/B results."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from learnloop.core.feedback import FeedbackCommitter, FeedbackIn, IdempotencyConflict, to_record
from learnloop.core.labels import FeedbackOutcomes, join
from learnloop.core.ledger import PredictionRecord
from learnloop.storage.sql.database import Database
from learnloop.storage.sql.feedback import SqlFeedbackAnalytics, SqlFeedbackStore
from learnloop.storage.sql.serving import SqlPredictionStore

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def prediction(
    pid: str, *, subject: str = "s1", label: int = 0, p1: float = 0.2
) -> PredictionRecord:
    return PredictionRecord(
        id=pid,
        model="m",
        version="1",
        arm="champion",
        subject_id=subject,
        input_hash="h" + pid,
        inputs={"x": 1.5, "kind": "a"},
        output={"prediction": label, "probabilities": {"0": 1 - p1, "1": p1}},
        latency_ms=1.0,
        cache_hit=False,
        served_by={"version": "1"},
        created_at=T0,
    )


def event(**kw: object) -> FeedbackIn:
    return FeedbackIn.model_validate(kw)


@pytest.fixture
def stores(db: Database):  # type: ignore[no-untyped-def]
    store = SqlFeedbackStore(db)
    committer = FeedbackCommitter(store)
    yield store, committer, SqlPredictionStore(db), SqlFeedbackAnalytics(db)
    committer.close()


def test_idempotency_key_stores_once(stores) -> None:  # type: ignore[no-untyped-def]
    store, committer, _, _ = stores
    now = datetime.now(UTC)
    first = committer.commit(
        [to_record(event(type="click", subject_id="u", idempotency_key="k1"), now)]
    )
    again = committer.commit(
        [
            to_record(event(type="click", subject_id="u", idempotency_key="k1"), now),
            to_record(event(type="click", subject_id="u", idempotency_key="k2"), now),
            to_record(event(type="click", subject_id="u", idempotency_key="k2"), now),
        ]
    )
    assert not first[0].duplicate
    assert [a.duplicate for a in again] == [True, False, True]
    assert again[0].id == first[0].id  # a duplicate answers with the id stored first
    assert again[1].id == again[2].id
    assert store.count() == 2
    # without keys, equal events are distinct events
    committer.commit([to_record(event(type="click", subject_id="u"), now)] * 1)
    committer.commit([to_record(event(type="click", subject_id="u"), now)])
    assert store.count() == 4


def test_concurrent_requests_are_group_committed(stores) -> None:  # type: ignore[no-untyped-def]
    store, committer, _, _ = stores
    now = datetime.now(UTC)
    results: list[int] = []

    def send(i: int) -> None:
        acks = committer.commit(
            [
                to_record(
                    event(type="rating", value=3, subject_id=f"u{i}", idempotency_key=f"c{i}-{j}"),
                    now,
                )
                for j in range(20)
            ]
        )
        results.append(sum(not a.duplicate for a in acks))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [20] * 16
    assert store.count() == 320
    assert committer.stats.commits < 16  # requests shared transactions
    assert committer.stats.largest_group > 1


def test_orphans_are_stored_and_reported(stores) -> None:  # type: ignore[no-untyped-def]
    store, committer, predictions, _ = stores
    predictions.append_many([prediction("p-known")])
    now = datetime.now(UTC)
    acks = committer.commit(
        [
            to_record(event(type="thumbs", value="up", prediction_id="p-known"), now),
            to_record(event(type="thumbs", value="up", prediction_id="p-missing"), now),
        ]
    )
    assert [a.orphan for a in acks] == [False, True]
    assert store.get(acks[1].id) is not None


def test_join_with_late_labels(stores) -> None:  # type: ignore[no-untyped-def]
    store, committer, predictions, analytics = stores
    now = datetime.now(UTC)
    # feedback for p2 arrives before its prediction reaches the ledger (late ledger flush)
    committer.commit([to_record(event(type="label", value=1, prediction_id="p2"), now)])
    predictions.append_many([prediction("p1"), prediction("p2"), prediction("p3", p1=0.9, label=1)])
    committer.commit(
        [
            to_record(event(type="thumbs", value="down", prediction_id="p1"), now),
            to_record(event(type="rating", value=1, prediction_id="p3"), now),
        ]
    )
    preds, events = analytics.labelled_predictions("m")
    examples = {e.prediction.id: e for e in join(preds, events)}
    assert set(examples) == {"p1", "p2", "p3"}
    assert examples["p1"].label == 1 and examples["p1"].label_source == "thumbs"
    assert examples["p1"].correct is False
    assert examples["p2"].label == 1 and examples["p2"].correct is False
    assert examples["p3"].label is None and examples["p3"].negative  # rating 1, no label
    # a label arriving days later replaces the thumbs verdict
    later = now + timedelta(days=3)
    committer.commit(
        [to_record(event(type="label", value=0, prediction_id="p1", timestamp=later), later)]
    )
    preds, events = analytics.labelled_predictions("m")
    examples = {e.prediction.id: e for e in join(preds, events)}
    assert examples["p1"].label == 0 and examples["p1"].correct is True
    assert examples["p1"].label_source == "label"


def test_outcomes_for_experiments(stores) -> None:  # type: ignore[no-untyped-def]
    store, committer, predictions, _ = stores
    predictions.append_many([prediction("a"), prediction("b"), prediction("c")])
    now = datetime.now(UTC)
    committer.commit(
        [
            to_record(event(type="thumbs", value="up", prediction_id="a"), now),
            to_record(event(type="thumbs", value="down", prediction_id="b"), now),
            to_record(event(type="rating", value=4, prediction_id="c"), now),
        ]
    )
    auto = FeedbackOutcomes(predictions.get_many, store.for_predictions)
    assert auto.outcomes(["a", "b", "c", "zz"]) == {"a": 1.0, "b": 0.0, "c": 4.0}
    rating = FeedbackOutcomes(predictions.get_many, store.for_predictions, "rating")
    assert rating.outcomes(["a", "b", "c"]) == {"c": 4.0}


def test_metrics_per_arm(stores) -> None:  # type: ignore[no-untyped-def]
    from learnloop.loop.feedback import summarize

    _, committer, predictions, analytics = stores
    predictions.append_many([prediction(f"p{i}") for i in range(4)])
    now = datetime.now(UTC)
    committer.commit(
        [
            to_record(event(type="rating", value=5, prediction_id="p0"), now),
            to_record(event(type="rating", value=3, prediction_id="p1"), now),
            to_record(event(type="thumbs", value="up", prediction_id="p2"), now),
            to_record(event(type="click", prediction_id="p3"), now),
            to_record(event(type="click", prediction_id="nope", model="m"), now),
        ]
    )
    raw = analytics.metrics(
        model="m", since=T0 - timedelta(days=1), until=now + timedelta(minutes=1), bucket_s=3600
    )
    out = summarize(raw, since=T0, until=now, bucket_s=3600, model="m")
    assert out["events"] == 5 and out["orphans"] == 1
    arm = next(a for a in out["arms"] if a["arm"] == "champion")
    assert arm["predictions"] == 4
    assert arm["rates"]["mean_rating"] == pytest.approx(4.0)
    assert arm["rates"]["click_through_rate"] == pytest.approx(0.25)
    assert arm["rates"]["feedback_rate"] == pytest.approx(1.0)
    assert out["rating_distribution"]["m"] == {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1}
    assert sum(p["events"] for p in out["series"]) == 5


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"type": "rating", "value": 6, "subject_id": "u"}, "rating"),
        ({"type": "thumbs", "value": "sideways", "subject_id": "u"}, "thumbs"),
        ({"type": "click"}, "prediction_id"),
        ({"type": "signal", "value": 1, "subject_id": "u"}, "name"),
        ({"type": "dwell_ms", "value": -1, "subject_id": "u"}, "dwell_ms"),
        ({"type": "nope", "subject_id": "u"}, "type"),
    ],
)
def test_bad_events_are_refused(body: dict[str, object], loc: str) -> None:
    with pytest.raises(ValueError, match=loc):
        FeedbackIn.model_validate(body)


def test_ledger_pii_rules_scrub_inputs_before_storage(db: Database) -> None:
    from learnloop.loop.privacy.ledger import ScrubbingPredictionStore
    from learnloop.loop.privacy.pii import PiiScrubber

    inner = SqlPredictionStore(db)
    rules = {"email": "hash", "note": "redact", "x": "keep"}
    store = ScrubbingPredictionStore(inner, PiiScrubber(rules, secret=b"s3cret", text_fields=()))
    record = prediction("pii-1")
    record = PredictionRecord(
        **{
            **record.__dict__,
            "inputs": {"x": 1.5, "email": "ann@example.com", "note": "call +44 20 7946 0958"},
        }
    )
    store.append_many([record])
    stored = inner.get("pii-1")
    assert stored is not None and stored.inputs is not None
    assert stored.inputs["x"] == 1.5
    assert stored.inputs["email"].startswith("h:") and "ann" not in stored.inputs["email"]
    assert "7946" not in stored.inputs["note"] and "[PHONE]" in stored.inputs["note"]


def test_a_key_reused_for_another_event_is_a_conflict(stores) -> None:  # type: ignore[no-untyped-def]
    store, committer, _, _ = stores
    now = datetime.now(UTC)
    first = committer.commit(
        [to_record(event(type="rating", value=4, subject_id="u", idempotency_key="r1"), now)]
    )
    # the same event again (a retry): a duplicate, acknowledged with the stored id
    again = committer.commit(
        [to_record(event(type="rating", value=4, subject_id="u", idempotency_key="r1"), now)]
    )
    assert again[0].duplicate and again[0].id == first[0].id
    # another event under the same key: refused, nothing of the request stored
    with pytest.raises(IdempotencyConflict, match="'r1'.*event 1"):
        committer.commit(
            [
                to_record(event(type="click", subject_id="u", idempotency_key="r2"), now),
                to_record(event(type="rating", value=1, subject_id="u", idempotency_key="r1"), now),
            ]
        )
    assert store.count() == 1
    assert store.get(first[0].id).value == 4.0  # type: ignore[union-attr]
    # within one request: the same key for two different events
    with pytest.raises(IdempotencyConflict, match="'r3'"):
        committer.commit(
            [
                to_record(event(type="rating", value=2, subject_id="u", idempotency_key="r3"), now),
                to_record(event(type="rating", value=3, subject_id="u", idempotency_key="r3"), now),
            ]
        )
    assert store.count() == 1
    assert committer.stats.conflicts == 2
    # the store keeps the hash: another committer (another process) sees the clash too
    other = FeedbackCommitter(store)
    try:
        with pytest.raises(IdempotencyConflict):
            other.commit(
                [
                    to_record(
                        event(type="rating", value=5, subject_id="u", idempotency_key="r1"), now
                    )
                ]
            )
    finally:
        other.close()


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_values_are_refused_outside_http_too(token: str) -> None:
    # the CLI's `feedback import` parses JSON Lines with this model, not through the API
    line = f'{{"type": "signal", "name": "n", "value": {token}, "subject_id": "u"}}'
    with pytest.raises(ValidationError) as caught:
        FeedbackIn.model_validate_json(line)
    assert [e["loc"] for e in caught.value.errors()] == [("value",)]
    line = f'{{"type": "click", "subject_id": "u", "attributes": {{"w": [1, {token}]}}}}'
    with pytest.raises(ValidationError, match="finite"):
        FeedbackIn.model_validate_json(line)

"""The ledger writer on a real store: batching, back-pressure, retry while the store is down."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest

from learnloop.core.errors import StorageError
from learnloop.core.ids import new_id
from learnloop.core.ledger import LedgerWriter, PredictionRecord
from learnloop.storage.sql.database import Database
from learnloop.storage.sql.serving import SqlPredictionStore


def record(model: str = "m", shadow_of: str | None = None) -> PredictionRecord:
    return PredictionRecord(
        id=new_id(),
        model=model,
        version="1",
        arm="a",
        subject_id="s",
        input_hash="h",
        inputs={"x": 1},
        output={"prediction": 1},
        latency_ms=1.0,
        cache_hit=False,
        served_by={"version": "1"},
        created_at=datetime.now(UTC),
        shadow_of=shadow_of,
    )


@pytest.fixture
def store(db: Database) -> Iterator[SqlPredictionStore]:
    yield SqlPredictionStore(db)


def test_rows_are_written_in_batches_and_readable(store: SqlPredictionStore) -> None:
    writer = LedgerWriter(store, batch_size=100, flush_interval_ms=20)
    records = [record() for _ in range(250)]
    writer.record(records)
    assert writer.flush(10)
    writer.close()
    assert writer.stats.flushed == 250 and 3 <= writer.stats.flushes <= 250
    stored = store.list("m", limit=1000)
    assert {r.id for r in stored} == {r.id for r in records}
    got = store.get(records[7].id)
    assert got is not None and dict(got.output) == {"prediction": 1}


def test_shadow_rows_pair_with_their_primary(store: SqlPredictionStore) -> None:
    primary = record()
    shadow = record(shadow_of=primary.id)
    store.append_many([primary, shadow])
    assert [r.id for r in store.list("m")] == [primary.id]
    assert [r.id for r in store.list("m", shadow=True)] == [shadow.id]
    [(a, b)] = store.shadow_pairs("m")
    assert (a.id, b.id) == (primary.id, shadow.id)


class FlakyStore:
    """A real store that refuses writes while ``down`` is set (an outage we control)."""

    def __init__(self, inner: SqlPredictionStore) -> None:
        self.inner = inner
        self.down = threading.Event()

    def append_many(self, records: Sequence[PredictionRecord]) -> None:
        if self.down.is_set():
            raise ConnectionError("database unavailable")
        self.inner.append_many(records)


def test_an_outage_delays_rows_but_loses_none(store: SqlPredictionStore) -> None:
    flaky = FlakyStore(store)
    flaky.down.set()
    writer = LedgerWriter(flaky, batch_size=10, flush_interval_ms=5)  # type: ignore[arg-type]
    records = [record() for _ in range(30)]
    writer.record(records)
    time.sleep(0.3)
    assert store.list("m") == [] and writer.stats.failed_flushes >= 1
    flaky.down.clear()
    assert writer.flush(10)
    writer.close()
    assert len(store.list("m", limit=100)) == 30


def test_a_full_queue_pushes_back_then_fails_loudly(store: SqlPredictionStore) -> None:
    flaky = FlakyStore(store)
    flaky.down.set()
    writer = LedgerWriter(  # type: ignore[arg-type]
        flaky, queue_size=5, batch_size=1, flush_interval_ms=1, max_block_ms=200
    )
    started = time.perf_counter()
    with pytest.raises(StorageError, match="ledger is full"):
        writer.record([record() for _ in range(20)])
    assert time.perf_counter() - started >= 0.2  # it waited (back-pressure) before failing
    assert writer.stats.blocked_ms >= 200
    flaky.down.clear()
    writer.close()

"""The prediction ledger: every served output, written off the request path.

:class:`LedgerWriter` keeps a bounded in-memory queue that a background thread flushes to the
:class:`PredictionStore` in batches, every ``flush_interval_ms`` or when ``batch_size`` rows are
waiting. When the queue is full, ``record`` blocks the request (back-pressure) up to
``max_block_ms`` and then raises ``StorageError`` — it never drops silently. What can be lost on
a crash (``kill -9``, power cut) is the unflushed window: at most ``flush_interval_ms`` of
predictions, and never more than ``queue_size`` rows; a clean shutdown flushes everything.
"""

from __future__ import annotations

import builtins
import logging
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from learnloop.core.errors import StorageError

log = logging.getLogger("learnloop.ledger")


@dataclass(frozen=True)
class PredictionRecord:
    id: str
    model: str
    version: str
    arm: str
    subject_id: str | None
    input_hash: str
    inputs: Mapping[str, Any] | None
    output: Mapping[str, Any]
    latency_ms: float
    cache_hit: bool
    served_by: Mapping[str, Any]
    created_at: datetime
    shadow_of: str | None = None


class PredictionStore(Protocol):
    """Durable ledger rows. ``append_many`` is one transaction (all or nothing)."""

    def append_many(self, records: Sequence[PredictionRecord]) -> None: ...

    def get(self, prediction_id: str) -> PredictionRecord | None: ...

    def list(
        self,
        model: str,
        *,
        limit: int = 100,
        shadow: bool | None = False,
        since: datetime | None = None,
    ) -> builtins.list[PredictionRecord]:
        """Newest first. ``shadow``: False = served only, True = shadow only, None = both."""
        ...

    def shadow_pairs(
        self, model: str, limit: int = 10_000
    ) -> builtins.list[tuple[PredictionRecord, PredictionRecord]]:
        """(served, shadow) pairs, newest first."""
        ...


@dataclass
class LedgerStats:
    recorded: int = 0
    flushed: int = 0
    flushes: int = 0
    failed_flushes: int = 0
    blocked_ms: float = 0.0


class LedgerWriter:
    """Batches ledger rows to a store from a background thread."""

    def __init__(
        self,
        store: PredictionStore,
        *,
        queue_size: int = 50_000,
        batch_size: int = 1_000,
        flush_interval_ms: float = 50.0,
        max_block_ms: float = 5_000.0,
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_ms / 1000
        self.max_block_s = max_block_ms / 1000
        self.stats = LedgerStats()
        self._queue: queue.Queue[PredictionRecord] = queue.Queue(maxsize=queue_size)
        self._unflushed: set[str] = set()  # ids recorded but not yet written
        self._ids_lock = threading.Lock()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="ll-ledger", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def unflushed(self, prediction_ids: Sequence[str]) -> builtins.set[str]:
        """Those of ``prediction_ids`` recorded here but not yet in the store."""
        with self._ids_lock:
            return {i for i in prediction_ids if i in self._unflushed}

    def record(self, records: Sequence[PredictionRecord]) -> None:
        with self._ids_lock:
            self._unflushed.update(r.id for r in records)
        for rec in records:
            try:
                self._queue.put_nowait(rec)
            except queue.Full:
                started = time.perf_counter()
                try:
                    self._queue.put(rec, timeout=self.max_block_s)
                except queue.Full:
                    raise StorageError("prediction ledger is full and not draining") from None
                finally:
                    self.stats.blocked_ms += (time.perf_counter() - started) * 1000
            self.stats.recorded += 1

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything recorded so far is written; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(min(remaining, 0.05))
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        self.flush(timeout_s)
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._take()
            if batch:
                self._write(batch)

    def _take(self) -> list[PredictionRecord]:
        try:
            first = self._queue.get(timeout=0.1)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.flush_interval_s
        while len(batch) < self.batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _write(self, batch: list[PredictionRecord]) -> None:
        delay = 0.05
        while True:
            try:
                self.store.append_many(batch)
                break
            except Exception:  # the store is down: keep the rows and retry with backoff
                self.stats.failed_flushes += 1
                log.exception("ledger flush failed; retrying", extra={"rows": len(batch)})
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, 2.0)
        with self._ids_lock:
            self._unflushed.difference_update(r.id for r in batch)
        self.stats.flushed += len(batch)
        self.stats.flushes += 1
        with self._idle:
            for _ in batch:
                self._queue.task_done()
            self._idle.notify_all()

"""The feedback ledger: typed events about predictions and subjects, committed durably.

Events
    explicit — ``thumbs`` (``"up"``/``"down"`` or a bool), ``rating`` (integer 1–5),
    ``correction`` (the corrected output), ``label`` (the true label);
    implicit — ``dwell_ms`` (≥ 0), ``click``, ``completion`` (bool or a fraction 0–1) and
    ``signal`` (a custom named number).

Each event refers to a ``prediction_id`` and/or a ``subject_id``, carries the client's
timestamp and may carry an ``idempotency_key``: an event whose key is already stored is
acknowledged as a duplicate and not stored again (keys are global; scope them yourself, e.g.
``"app1:<uuid>"``). Events without a key get their own id as key, so they never collide.

Durability
    :class:`FeedbackCommitter` acknowledges an event only after the transaction that holds it
    has committed (SQLite ``synchronous=FULL`` in WAL mode, or PostgreSQL's commit).
    Concurrent requests are *group-committed*: a single writer thread takes every request
    waiting in its queue and writes them in one transaction, so a burst of N requests costs
    one fsync instead of N. Nothing is acknowledged from memory: a ``kill -9`` loses only
    requests that were never answered, and a client that retries those with the same
    idempotency key stores each event exactly once.

Batches
    A batch is validated as a whole: one bad event rejects the whole batch (HTTP 422 listing the
    index and field of *every* bad event) and nothing of it is stored. Valid batches are stored
    in one transaction: all or nothing.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol

from pydantic import AfterValidator, ConfigDict, Field, ValidationInfo, field_validator

from learnloop.core.errors import Conflict, StorageError
from learnloop.core.identifiers import ModelName, SubjectId
from learnloop.core.ids import new_id
from learnloop.core.inputs import ClientModel
from learnloop.core.limits import (
    MAX_ATTRIBUTES_BYTES,
    MAX_ATTRIBUTES_KEYS,
    MAX_STRING_CHARS,
    MAX_VALUE_BYTES,
    json_size,
    no_control_characters,
    no_nul,
    value_problem,
)

log = logging.getLogger("learnloop.feedback")

FeedbackType = Literal[
    "thumbs", "rating", "correction", "label", "dwell_ms", "click", "completion", "signal"
]
EXPLICIT = frozenset({"thumbs", "rating", "correction", "label"})
MAX_BATCH = 10_000
Key = Annotated[str, Field(min_length=1), AfterValidator(no_control_characters)]
"""An id or key sent by a client: no control characters (lengths are set per field)."""


class FeedbackIn(ClientModel):
    """One feedback event as clients send it."""

    model_config = ConfigDict(extra="forbid")

    type: FeedbackType
    prediction_id: Key | None = Field(None, max_length=64)
    subject_id: SubjectId | None = Field(
        None, validate_default=True, description="Who it is about (no control characters)."
    )
    model: ModelName | None = None
    value: Any = Field(
        None,
        validate_default=True,
        description="thumbs: 'up'/'down' or bool; rating: 1–5; correction: the corrected output; "
        "label: the true label; dwell_ms: ≥ 0; click: true (default); completion: bool or 0–1; "
        f"signal: a number. Numbers are finite; a label or correction is at most "
        f"{MAX_VALUE_BYTES // 1024} KiB as JSON.",
    )
    name: Key | None = Field(
        None,
        max_length=64,
        validate_default=True,
        description="The signal's name (type 'signal').",
    )
    timestamp: datetime | None = Field(None, description="Client time (UTC if no offset).")
    idempotency_key: Key | None = Field(
        None,
        max_length=200,
        description="Retries with the same key and the same event are acknowledged as "
        "duplicates; the same key with a different event is a conflict (409).",
    )
    text: Annotated[str, AfterValidator(no_nul)] | None = Field(
        None, max_length=MAX_STRING_CHARS, description="Free-text comment."
    )
    attributes: dict[str, Any] | None = Field(
        None,
        max_length=MAX_ATTRIBUTES_KEYS,
        description=f"Extra fields: at most {MAX_ATTRIBUTES_KEYS} keys, "
        f"{MAX_ATTRIBUTES_BYTES // 1024} KiB as JSON.",
    )

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            return v.replace(tzinfo=UTC)
        return v

    # field validators (not a model validator) so that errors name the field: events.3.value

    @field_validator("subject_id")
    @classmethod
    def _refers(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None and info.data.get("prediction_id") is None and "prediction_id" in info.data:
            raise ValueError("give a prediction_id or a subject_id (or both)")
        return v

    @field_validator("value")
    @classmethod
    def _value(cls, v: Any, info: ValidationInfo) -> Any:
        problem = value_problem(v)
        if problem is not None:
            raise ValueError(problem)
        if isinstance(v, dict | list) and json_size(v) > MAX_VALUE_BYTES:
            raise ValueError(f"over {MAX_VALUE_BYTES} bytes as JSON")
        kind = info.data.get("type")
        if kind is not None and kind != "signal":
            numeric_value(kind, v)
        elif kind == "signal" and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise ValueError("a signal's value must be a number")
        return v

    @field_validator("attributes")
    @classmethod
    def _attributes(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is None:
            return v
        problem = value_problem(v)
        if problem is not None:
            raise ValueError(problem)
        if json_size(v) > MAX_ATTRIBUTES_BYTES:
            raise ValueError(f"over {MAX_ATTRIBUTES_BYTES} bytes as JSON")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("type") == "signal" and not v:
            raise ValueError("a signal needs a name")
        return v


def numeric_value(kind: str, value: Any, name: str | None = None) -> float | None:
    """The event's number (thumbs up = 1, rating n, dwell ms, …); ``ValueError`` if invalid."""
    if kind == "thumbs":
        if value in ("up", True, 1) and not isinstance(value, float):
            return 1.0
        if value in ("down", False, 0) and not isinstance(value, float):
            return 0.0
        raise ValueError("thumbs must be 'up' or 'down' (or true/false)")
    if kind == "rating":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
            raise ValueError("rating must be an integer from 1 to 5")
        return float(value)
    if kind == "dwell_ms":
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError("dwell_ms must be a number ≥ 0")
        return float(value)
    if kind == "click":
        if value is None or value is True:
            return 1.0
        if value is False:
            return 0.0
        raise ValueError("click must be true, false or absent")
    if kind == "completion":
        if value is None or isinstance(value, bool):
            return 0.0 if value is False else 1.0
        if isinstance(value, int | float) and 0 <= value <= 1:
            return float(value)
        raise ValueError("completion must be a bool or a fraction from 0 to 1")
    if kind == "signal":
        if not name:
            raise ValueError("name: a signal needs a name")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("a signal's value must be a number")
        return float(value)
    if kind in ("label", "correction"):
        if value is None:
            raise ValueError(f"a {kind} needs a value")
        return None
    raise ValueError(f"type: unknown feedback type {kind!r}")


class FeedbackBatchIn(ClientModel):
    model_config = ConfigDict(extra="forbid")
    events: list[FeedbackIn] = Field(..., min_length=1, max_length=MAX_BATCH)


@dataclass(frozen=True)
class FeedbackRecord:
    """A stored feedback event."""

    id: str
    idem_key: str
    type: str
    name: str | None
    value: float | None
    payload: Any
    prediction_id: str | None
    subject_id: str | None
    model: str | None
    client_ts: datetime
    received_at: datetime
    text: str | None = None
    attributes: Mapping[str, Any] | None = None
    body_hash: str | None = None  # of the event as sent, without its key (see body_hash())


@dataclass(frozen=True)
class Ack:
    """What happened to one submitted event."""

    id: str  # the stored event's id (for a duplicate: the id stored first)
    duplicate: bool
    orphan: bool  # its prediction_id is not (yet) in the prediction ledger


class FeedbackStore(Protocol):
    def insert(
        self, records: Sequence[FeedbackRecord]
    ) -> tuple[set[str], dict[str, tuple[str, str | None]]]:
        """Store ``records`` in one transaction, skipping those whose ``idem_key`` is stored.
        Returns (the keys inserted now, {key: (stored id, stored body hash)} for the keys that
        were skipped). The body hash is ``None`` for events stored before hashes were kept."""
        ...

    def stored_keys(self, keys: Sequence[str]) -> dict[str, tuple[str, str | None]]:
        """{key: (stored id, stored body hash)} for those of ``keys`` already stored."""
        ...

    def known_predictions(self, prediction_ids: Sequence[str]) -> set[str]: ...

    def get(self, event_id: str) -> FeedbackRecord | None: ...

    def list(
        self,
        *,
        prediction_id: str | None = None,
        subject_id: str | None = None,
        model: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> builtins.list[FeedbackRecord]: ...

    def for_predictions(self, prediction_ids: Sequence[str]) -> builtins.list[FeedbackRecord]: ...

    def count(self) -> int: ...


def body_hash(event: FeedbackIn) -> str:
    """SHA-256 of the event as sent (canonical JSON), without its idempotency key: equal for a
    retry of the same event, different for another event sent under the same key."""
    body = event.model_dump(mode="json", exclude={"idempotency_key"})
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def to_record(event: FeedbackIn, received_at: datetime) -> FeedbackRecord:
    event_id = new_id()
    value = numeric_value(event.type, event.value, event.name)
    return FeedbackRecord(
        id=event_id,
        idem_key=event.idempotency_key or event_id,
        type=event.type,
        name=event.name,
        value=value,
        payload=None if value is not None else event.value,
        prediction_id=event.prediction_id,
        subject_id=event.subject_id,
        model=event.model,
        client_ts=event.timestamp or received_at,
        received_at=received_at,
        text=event.text,
        attributes=event.attributes,
        body_hash=body_hash(event) if event.idempotency_key else None,
    )


class IdempotencyConflict(Conflict):
    """An idempotency key already names a different event."""

    def __init__(self, key: str, index: int, of: int) -> None:
        where = f" (event {index})" if of > 1 else ""
        super().__init__(
            f"idempotency key {key!r}{where} was already used for a different event; "
            "use a new key for a new event"
        )
        self.key = key


@dataclass
class CommitterStats:
    requests: int = 0
    events: int = 0
    duplicates: int = 0
    conflicts: int = 0
    commits: int = 0
    failed_commits: int = 0
    largest_group: int = 0


@dataclass
class _Pending:
    records: list[FeedbackRecord]
    future: Future[list[Ack]] = field(default_factory=Future)


class FeedbackCommitter:
    """One writer thread that group-commits every waiting request in one transaction."""

    def __init__(
        self,
        store: FeedbackStore,
        *,
        max_group_events: int = 50_000,
        queue_size: int = 10_000,
        on_commit: Callable[[Sequence[FeedbackRecord]], None] | None = None,
        pending_predictions: Callable[[Sequence[str]], set[str]] | None = None,
    ) -> None:
        self.store = store
        # predictions made but not yet flushed to the ledger are not orphans
        self.pending_predictions = pending_predictions
        self.max_group_events = max_group_events
        self.on_commit = on_commit
        self.stats = CommitterStats()
        self._queue: queue.Queue[_Pending | None] = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._run, name="ll-feedback", daemon=True)
        self._closed = False
        self._thread.start()

    def submit(self, records: Sequence[FeedbackRecord]) -> Future[list[Ack]]:
        """Queue ``records``; the future resolves after their transaction committed."""
        if self._closed:
            raise StorageError("feedback committer is closed")
        pending = _Pending(list(records))
        try:
            self._queue.put(pending, timeout=30)
        except queue.Full:
            raise StorageError("feedback queue is full; retry later") from None
        return pending.future

    def commit(self, records: Sequence[FeedbackRecord], timeout_s: float = 60) -> list[Ack]:
        """Submit and wait (for synchronous callers)."""
        return self.submit(records).result(timeout_s)

    def close(self, timeout_s: float = 10) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            size = len(first.records)
            stop = False
            while size < self.max_group_events:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                group.append(nxt)
                size += len(nxt.records)
            self._write(group)
            if stop:
                return

    def _write(self, group: list[_Pending]) -> None:
        try:
            group = self._refuse_conflicts(group)
        except Exception as e:
            self._fail(group, e)
            return
        records: list[FeedbackRecord] = []
        first_of: dict[str, FeedbackRecord] = {}
        for p in group:
            for r in p.records:
                if r.idem_key not in first_of:  # the first of equal keys in a group wins
                    first_of[r.idem_key] = r
                    records.append(r)
        if not records:
            return
        try:
            inserted, skipped = self._insert_with_retry(records)
            ids = {k: i for k, (i, _) in skipped.items()}
            wanted = [r.prediction_id for r in records if r.prediction_id]
            known = self.store.known_predictions(wanted) if wanted else set()
            missing = [w for w in wanted if w not in known]
            if missing and self.pending_predictions is not None:
                known |= self.pending_predictions(missing)
        except Exception as e:  # the store failed for good: fail these requests, not the thread
            self._fail(group, e)
            return
        self.stats.commits += 1
        self.stats.largest_group = max(self.stats.largest_group, len(group))
        if self.on_commit is not None:
            try:
                self.on_commit([r for r in records if r.idem_key in inserted])
            except Exception:
                log.exception("feedback on_commit hook failed")
        claimed: set[str] = set()
        for p in group:
            # a concurrent writer (another process) stored one of the keys with another event
            # between the check and the insert: the request's other events are stored, and
            # it is told of the clash like any other conflict
            clash = next(
                (
                    (i, r.idem_key)
                    for i, r in enumerate(p.records)
                    if r.idem_key in skipped and _differs(skipped[r.idem_key][1], r.body_hash)
                ),
                None,
            )
            if clash is not None:
                self.stats.conflicts += 1
                p.future.set_exception(IdempotencyConflict(clash[1], clash[0], len(p.records)))
                continue
            acks = []
            for r in p.records:
                new = r.idem_key in inserted and r.idem_key not in claimed
                if new:
                    claimed.add(r.idem_key)
                acks.append(
                    Ack(
                        id=ids.get(r.idem_key) or first_of[r.idem_key].id,
                        duplicate=not new,
                        orphan=bool(r.prediction_id) and r.prediction_id not in known,
                    )
                )
            self.stats.requests += 1
            self.stats.events += len(acks)
            self.stats.duplicates += sum(a.duplicate for a in acks)
            p.future.set_result(acks)

    def _refuse_conflicts(self, group: list[_Pending]) -> list[_Pending]:
        """Fail the requests that reuse an idempotency key for a different event (stored
        before, earlier in the group, or earlier in the same request); return the others."""
        keys = list(dict.fromkeys(r.idem_key for p in group for r in p.records if r.body_hash))
        stored = self.store.stored_keys(keys) if keys else {}
        hashes = {k: h for k, (_, h) in stored.items()}
        accepted = []
        for p in group:
            mine: dict[str, str | None] = {}
            clash = None
            for i, r in enumerate(p.records):
                known = r.idem_key in hashes or r.idem_key in mine
                earlier = hashes[r.idem_key] if r.idem_key in hashes else mine.get(r.idem_key)
                if known and _differs(earlier, r.body_hash):
                    clash = (i, r.idem_key)
                    break
                mine.setdefault(r.idem_key, r.body_hash)
            if clash is not None:
                self.stats.conflicts += 1
                p.future.set_exception(IdempotencyConflict(clash[1], clash[0], len(p.records)))
                continue
            for key, digest in mine.items():
                hashes.setdefault(key, digest)
            accepted.append(p)
        return accepted

    def _fail(self, group: list[_Pending], e: Exception) -> None:
        self.stats.failed_commits += 1
        events = sum(len(p.records) for p in group)
        log.exception("feedback commit failed", extra={"events": events})
        error = e if isinstance(e, StorageError) else StorageError(f"feedback store: {e}")
        for p in group:
            p.future.set_exception(error)

    def _insert_with_retry(
        self, records: list[FeedbackRecord]
    ) -> tuple[set[str], dict[str, tuple[str, str | None]]]:
        delay = 0.05
        for attempt in range(5):
            try:
                return self.store.insert(records)
            except Exception:
                if attempt == 4:
                    raise
                self.stats.failed_commits += 1
                log.warning("feedback commit failed; retrying", exc_info=True)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")


def _differs(stored: str | None, sent: str | None) -> bool:
    """Whether two body hashes name different events (unknown hashes never differ)."""
    return stored is not None and sent is not None and stored != sent

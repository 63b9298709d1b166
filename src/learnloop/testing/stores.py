"""Contract tests every SQL backend of the core store protocols must pass.

Subclass a contract in your test module and provide a ``db`` fixture yielding a migrated
:class:`~learnloop.storage.sql.database.Database` (learnloop's own suite parametrizes it over
SQLite and PostgreSQL)::

    class TestJobs(JobStoreContract): ...
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from learnloop.core.errors import Conflict
from learnloop.core.records import AliasEvent, DatasetRecord, JobControl, JobStatus
from learnloop.core.stores import AliasMove
from learnloop.storage.sql.database import Database
from learnloop.storage.sql.jobs import SqlJobStore
from learnloop.storage.sql.stores import (
    SqlAliasHistory,
    SqlAuditLog,
    SqlDatasetCatalog,
    SqlKeyStore,
)


class JobStoreContract:
    def test_submit_then_get_round_trips(self, db: Database) -> None:
        store = SqlJobStore(db)
        job = store.submit("train", {"a": [1, 2]}, priority=5, max_attempts=2, submitted_by="x")
        got = store.get(job.id)
        assert got is not None
        assert (got.kind, dict(got.payload), got.priority, got.max_attempts, got.submitted_by) == (
            "train",
            {"a": [1, 2]},
            5,
            2,
            "x",
        )
        assert got.status is JobStatus.QUEUED and got.attempts == 0
        assert got.created_at.tzinfo is not None
        assert store.get("missing") is None

    def test_claim_takes_highest_priority_then_oldest(self, db: Database) -> None:
        store = SqlJobStore(db)
        low = store.submit("train", {}, priority=-10)
        first = store.submit("train", {}, priority=0)
        second = store.submit("train", {}, priority=0)
        high = store.submit("train", {}, priority=10)
        store.submit("other", {}, priority=100)
        order = [store.claim("w", ["train"]) for _ in range(5)]
        assert [j.id if j else None for j in order] == [high.id, first.id, second.id, low.id, None]
        claimed = store.get(high.id)
        assert claimed is not None
        assert claimed.status is JobStatus.RUNNING and claimed.worker_id == "w"
        assert claimed.attempts == 1 and claimed.heartbeat_at is not None

    def test_concurrent_claims_hand_each_job_to_one_worker(self, db: Database) -> None:
        store = SqlJobStore(db)
        ids = {store.submit("train", {"i": i}).id for i in range(30)}
        others = [Database(db.url) for _ in range(4)]  # separate engines, like processes
        claimed: list[str] = []
        lock = threading.Lock()

        def work(database: Database, name: str) -> None:
            s = SqlJobStore(database)
            while (job := s.claim(name, ["train"])) is not None:
                with lock:
                    claimed.append(job.id)

        threads = [threading.Thread(target=work, args=(d, f"w{i}")) for i, d in enumerate(others)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for d in others:
            d.dispose()
        assert sorted(claimed) == sorted(ids)

    def test_progress_events_are_ordered(self, db: Database) -> None:
        store = SqlJobStore(db)
        job = store.submit("train", {})
        store.claim("w", ["train"])
        for i in range(1, 4):
            store.report(job.id, fraction=i / 4, message=f"step {i}", metrics={"loss": 1 / i})
        store.report(job.id, fraction=None, message="note", kind="log")
        events = store.events(job.id)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        progress = [e for e in events if e.kind == "progress"]
        assert [e.fraction for e in progress] == [0.25, 0.5, 0.75]
        assert progress[-1].metrics == {"loss": pytest.approx(1 / 3)}
        got = store.get(job.id)
        assert got is not None and got.progress == 0.75 and got.message == "step 3"
        assert store.events(job.id, after_seq=events[-2].seq)[0].message == "note"

    def test_finish_only_by_the_running_worker(self, db: Database) -> None:
        store = SqlJobStore(db)
        job = store.submit("train", {})
        store.claim("w1", ["train"])
        with pytest.raises(Conflict):
            store.finish(job.id, "w2", JobStatus.SUCCEEDED)
        done = store.finish(job.id, "w1", JobStatus.SUCCEEDED, result={"version": "3"})
        assert done.status is JobStatus.SUCCEEDED and done.progress == 1.0
        assert dict(done.result or {}) == {"version": "3"} and done.finished_at is not None
        with pytest.raises(Conflict):
            store.heartbeat(job.id, "w1")

    def test_failure_keeps_error_and_traceback(self, db: Database) -> None:
        store = SqlJobStore(db)
        job = store.submit("train", {})
        store.claim("w", ["train"])
        failed = store.finish(
            job.id, "w", JobStatus.FAILED, error="ValueError: bad", traceback="Traceback..."
        )
        assert failed.error == "ValueError: bad" and failed.traceback == "Traceback..."

    def test_control_requests(self, db: Database) -> None:
        store = SqlJobStore(db)
        queued = store.submit("train", {})
        assert store.request_control(queued.id, JobControl.CANCEL).status is JobStatus.CANCELLED
        with pytest.raises(Conflict):
            store.request_control(queued.id, JobControl.PAUSE)
        paused = store.submit("train", {})
        assert store.request_control(paused.id, JobControl.PAUSE).status is JobStatus.PAUSED
        assert store.resume(paused.id).status is JobStatus.QUEUED
        with pytest.raises(Conflict):
            store.resume(paused.id)
        running = store.claim("w", ["train"])
        assert running is not None and running.id == paused.id
        store.request_control(running.id, JobControl.PAUSE)
        assert store.heartbeat(running.id, "w") is JobControl.PAUSE
        after = store.finish(running.id, "w", JobStatus.PAUSED)
        assert after.status is JobStatus.PAUSED and after.control is None

    def test_stale_jobs_are_requeued_then_failed(self, db: Database) -> None:
        store = SqlJobStore(db)
        job = store.submit("train", {}, max_attempts=2)
        store.claim("dead", ["train"])
        assert store.requeue_stale(datetime.now(UTC) - timedelta(seconds=60)) == []
        time.sleep(0.01)
        [requeued] = store.requeue_stale(datetime.now(UTC) + timedelta(seconds=1))
        assert requeued.status is JobStatus.QUEUED and requeued.worker_id is None
        again = store.claim("w2", ["train"])
        assert again is not None and again.attempts == 2
        [failed] = store.requeue_stale(datetime.now(UTC) + timedelta(seconds=1))
        assert failed.status is JobStatus.FAILED and "out of attempts" in (failed.error or "")
        assert store.get(job.id) is not None

    def test_workers_register_and_leave(self, db: Database) -> None:
        store = SqlJobStore(db)
        store.worker_beat("w1", "host", 123)
        store.worker_beat("w1", "host", 123)
        alive = store.workers(alive_since=datetime.now(UTC) - timedelta(seconds=5))
        assert [(w.id, w.pid) for w in alive] == [("w1", 123)]
        assert store.workers(alive_since=datetime.now(UTC) + timedelta(seconds=5)) == []
        store.worker_gone("w1")
        assert store.workers(alive_since=datetime.now(UTC) - timedelta(seconds=5)) == []


class AuditLogContract:
    def test_append_and_filter(self, db: Database) -> None:
        log = SqlAuditLog(db)
        log.append("alice", "alias.set", "model:m", {"to": "2"}, request_id="r1")
        log.append("bob", "key.create", "key:k1")
        assert [e.actor for e in log.list()] == ["bob", "alice"]
        [only] = log.list(target="model:m")
        assert (only.action, dict(only.detail), only.request_id) == ("alias.set", {"to": "2"}, "r1")
        assert [e.actor for e in log.list(action="key.create")] == ["bob"]

    def test_rows_cannot_be_changed_or_deleted(self, db: Database) -> None:
        log = SqlAuditLog(db)
        log.append("alice", "alias.set", "model:m")
        for statement in ("UPDATE audit_events SET actor = 'mallory'", "DELETE FROM audit_events"):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), db.write() as s:
                s.execute(sa.text(statement))
        assert [e.actor for e in log.list()] == ["alice"]


class KeyStoreContract:
    def test_find_only_active_keys(self, db: Database) -> None:
        keys = SqlKeyStore(db)
        keys.add("k1", "ci", "reader", "h1", "admin")
        found = keys.find("h1")
        assert found is not None and (found.id, found.role) == ("k1", "reader")
        assert keys.find("nope") is None
        revoked = keys.revoke("k1")
        assert revoked is not None and revoked.revoked_at is not None
        assert keys.find("h1") is None
        assert [k.id for k in keys.list()] == ["k1"]
        assert keys.revoke("missing") is None

    def test_hash_is_unique(self, db: Database) -> None:
        keys = SqlKeyStore(db)
        keys.add("k1", "a", "reader", "same", "admin")
        with pytest.raises(sa.exc.IntegrityError):
            keys.add("k2", "b", "admin", "same", "admin")


def _set(version: str, actor: str = "t", reason: str = "") -> Callable[..., list[AliasMove]]:
    return lambda chain: [AliasMove("set", version, actor, reason)]


def _assert_chain(events: list[AliasEvent]) -> None:
    """Each event moves from where the previous one left the alias; ids and times increase."""
    head: str | None = None
    for before, event in zip([None, *events], events, strict=False):
        assert event.from_version == head, f"event {event.id} does not chain: {events}"
        if before is not None:
            assert before.id < event.id and before.at < event.at, events
        head = event.to_version


class AliasHistoryContract:
    def test_history_and_point_in_time(self, db: Database) -> None:
        history = SqlAliasHistory(db)
        history.move("m", "champion", _set("1", "a", "first"))
        time.sleep(0.02)
        between = datetime.now(UTC)
        time.sleep(0.02)
        history.move("m", "champion", _set("2", "b", "better"))
        history.move("m", "challenger", _set("3", "b"))
        events = history.history("m", "champion")
        assert [(e.from_version, e.to_version, e.actor) for e in events] == [
            (None, "1", "a"),
            ("1", "2", "b"),
        ]
        assert len(history.history("m")) == 3
        assert history.version_at("m", "champion", between) == "1"
        assert history.version_at("m", "champion", datetime.now(UTC)) == "2"
        assert history.version_at("m", "champion", between - timedelta(hours=1)) is None

    def test_move_sees_the_chain_and_appends_its_moves_chained(self, db: Database) -> None:
        history = SqlAliasHistory(db)
        seen: list[list[AliasEvent]] = []

        def two(chain: list[AliasEvent]) -> list[AliasMove]:
            seen.append(chain)
            return [AliasMove("sync", "5", "registry"), AliasMove("rollback", "4", "a", "why")]

        first = history.move("m", "champion", _set("4"))
        appended = history.move("m", "champion", two)
        assert seen == [first]
        assert [(e.action, e.from_version, e.to_version) for e in appended] == [
            ("sync", "4", "5"),
            ("rollback", "5", "4"),
        ]
        assert history.move("m", "champion", lambda chain: []) == []
        _assert_chain(history.history("m", "champion"))
        assert len(history.history("m", "champion")) == 3

    def test_a_failing_decision_appends_nothing(self, db: Database) -> None:
        history = SqlAliasHistory(db)
        history.move("m", "champion", _set("1"))

        def fail(chain: list[AliasEvent]) -> list[AliasMove]:
            raise Conflict("the registry refused")

        with pytest.raises(Conflict, match="refused"):
            history.move("m", "champion", fail)
        assert [e.to_version for e in history.history("m", "champion")] == ["1"]
        assert history.move("m", "champion", _set("2"))[0].from_version == "1"

    def test_concurrent_moves_from_two_connections_pools_form_one_chain(self, db: Database) -> None:
        """Twenty writers move one alias at once, half of them through a second ``Database``
        on the same URL (as a second process would: its own pool, its own in-process lock).
        Each one reads the head, dawdles, then moves: without a per-alias lock they interleave
        and the history no longer chains."""
        other = Database(db.url)
        history = [SqlAliasHistory(db), SqlAliasHistory(other)]
        start = threading.Barrier(20)
        heads: list[str | None] = []
        errors: list[BaseException] = []

        def writer(i: int) -> None:
            def decide(chain: list[AliasEvent]) -> list[AliasMove]:
                heads.append(chain[-1].to_version if chain else None)
                time.sleep(0.005)
                return [AliasMove("set", str(i), f"w{i}")]

            try:
                start.wait(10)
                history[i % 2].move("m", "champion", decide)
                history[i % 2].move("m", "other", _set(str(i)))
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(20)]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
        finally:
            other.dispose()
        assert not errors, errors
        events = history[0].history("m", "champion")
        assert len(events) == 20
        _assert_chain(events)
        assert heads == [None, *[e.to_version for e in events[:-1]]]
        assert sorted(e.to_version or "" for e in events) == sorted(str(i) for i in range(20))
        _assert_chain(history[0].history("m", "other"))
        assert [e.from_version for e in history[0].history("m", "other")].count(None) == 1


class DatasetCatalogContract:
    def test_add_is_idempotent_by_id(self, db: Database) -> None:
        catalog = SqlDatasetCatalog(db)
        record = DatasetRecord(
            id="ds-1",
            family="tabular",
            name="x.csv",
            rows=3,
            content_hash="abc",
            source="/tmp/x.csv",
            path="/d/ds-1/data.parquet",
            schema=(("a", "int64"), ("b", "object")),
            created_at=datetime.now(UTC),
            manifest={"rows": 3},
        )
        catalog.add(record)
        again = catalog.add(
            DatasetRecord(**{**record.__dict__, "name": "other.csv"})  # same id: no change
        )
        assert again.name == "x.csv"
        got = catalog.get("ds-1")
        assert got is not None and got.schema == record.schema and got.rows == 3
        assert [d.id for d in catalog.list("tabular")] == ["ds-1"]
        assert catalog.list("other") == [] and catalog.get("nope") is None

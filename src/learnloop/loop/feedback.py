"""Feedback ingestion and the feedback side of analytics.

:class:`FeedbackService` scrubs PII from each event (``feedback.pii_rules``), hands the events
to the group-committing writer and waits for the commit; it answers the metrics and the
labelled-examples join. See :mod:`learnloop.core.feedback` for the guarantees.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from learnloop.core.feedback import (
    Ack,
    FeedbackCommitter,
    FeedbackIn,
    FeedbackRecord,
    FeedbackStore,
    to_record,
)
from learnloop.core.labels import FeedbackOutcomes, LabelledExample, join
from learnloop.core.ledger import PredictionRecord
from learnloop.core.stores import FeedbackAnalytics

Scrub = Callable[[Mapping[str, Any]], dict[str, Any]]
log = logging.getLogger("learnloop.feedback")


class FeedbackListener(Protocol):
    """Told about feedback once it is durably committed (e.g. to update learner states).

    ``wants`` is called on the request path and must be cheap (no I/O); when it says yes,
    ``committed`` runs on the listener thread after the commit, *before* the submitter is
    acknowledged — so the next request sees its effect. Errors are logged, never turned into a
    failed acknowledgement (the events are already stored).
    """

    def wants(self, records: Sequence[FeedbackRecord]) -> bool: ...

    def committed(self, records: Sequence[FeedbackRecord], acks: Sequence[Ack]) -> None: ...


class FeedbackService:
    def __init__(
        self,
        store: FeedbackStore,
        committer: FeedbackCommitter,
        analytics: FeedbackAnalytics,
        predictions_by_id: Callable[[Sequence[str]], Sequence[PredictionRecord]],
        *,
        scrub: Scrub | None = None,
        flush_ledger: Callable[[], object] | None = None,
    ) -> None:
        self.store = store
        self.committer = committer
        self.analytics = analytics
        self.predictions_by_id = predictions_by_id
        self.scrub = scrub
        self.flush_ledger = flush_ledger or (lambda: None)
        self.listeners: list[FeedbackListener] = []
        self._listener_pool: ThreadPoolExecutor | None = None

    # -- ingestion ------------------------------------------------------------------------------

    def records(self, events: Sequence[FeedbackIn]) -> list[FeedbackRecord]:
        now = datetime.now(UTC)
        out = []
        for event in events:
            record = to_record(event, now)
            if self.scrub is not None and (record.text is not None or record.attributes):
                clean = self.scrub({"text": record.text, "attributes": record.attributes})
                record = replace(record, text=clean.get("text"), attributes=clean.get("attributes"))
            out.append(record)
        return out

    def submit(self, events: Sequence[FeedbackIn]) -> Future[list[Ack]]:
        records = self.records(events)
        committed = self.committer.submit(records)
        interested = [x for x in self.listeners if x.wants(records)]
        if not interested:
            return committed
        if self._listener_pool is None:
            self._listener_pool = ThreadPoolExecutor(1, thread_name_prefix="ll-feedback-listen")
        pool = self._listener_pool
        acknowledged: Future[list[Ack]] = Future()

        def tell() -> None:
            acks = committed.result()
            for listener in interested:
                try:
                    listener.committed(records, acks)
                except Exception:
                    log.exception("feedback listener %r failed", listener)
            acknowledged.set_result(acks)

        def done(f: Future[list[Ack]]) -> None:
            error = f.exception()
            if error is not None:
                acknowledged.set_exception(error)
            else:
                pool.submit(tell)

        committed.add_done_callback(done)
        return acknowledged

    def ingest(self, events: Sequence[FeedbackIn], timeout_s: float = 60) -> list[Ack]:
        return self.submit(events).result(timeout_s)

    # -- reading --------------------------------------------------------------------------------

    def labelled(
        self,
        model: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100_000,
    ) -> list[LabelledExample]:
        self.flush_ledger()
        predictions, events = self.analytics.labelled_predictions(
            model, since=since, until=until, limit=limit
        )
        return join(predictions, events)

    def outcomes(self, kind: str = "auto") -> FeedbackOutcomes:
        return FeedbackOutcomes(self.predictions_by_id, self.store.for_predictions, kind)

    def metrics(
        self,
        *,
        model: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        window: timedelta = timedelta(hours=24),
        bucket_s: int = 3600,
    ) -> dict[str, Any]:
        self.flush_ledger()
        until = until or datetime.now(UTC)
        since = since or until - window
        raw = self.analytics.metrics(model=model, since=since, until=until, bucket_s=bucket_s)
        return summarize(raw, since=since, until=until, bucket_s=bucket_s, model=model)


def summarize(
    raw: Mapping[str, Any], *, since: datetime, until: datetime, bucket_s: int, model: str | None
) -> dict[str, Any]:
    """Shape the aggregates into totals, rates and distributions per model/version/arm."""
    served: dict[tuple[str, str, str], int] = {
        (r["model"], r["version"], r["arm"]): int(r["n"]) for r in raw["served"]
    }
    reached: dict[tuple[str, str, str], int] = {
        (r["model"], r["version"], r["arm"]): int(r["n"]) for r in raw.get("reached", [])
    }
    groups: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
    totals: dict[str, int] = {}
    orphans = 0
    for r in raw["by_arm"]:
        key = (r["model"], r["version"], r["arm"])
        g = groups.setdefault(
            key,
            {"model": key[0], "version": key[1], "arm": key[2], "events": 0, "types": {}},
        )
        kind = r["type"] if r["type"] != "signal" else f"signal:{r['name']}"
        t = g["types"].setdefault(kind, {"count": 0, "mean": None})
        t["count"] += int(r["n"])
        t["mean"] = None if r["mean"] is None else round(float(r["mean"]), 6)
        g["events"] += int(r["n"])
        g.setdefault("_predictions", {})[kind] = int(r["predictions"])
        totals[kind] = totals.get(kind, 0) + int(r["n"])
        orphans += int(r["orphans"] or 0)
    arms = []
    for key, g in sorted(groups.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        n_served = served.get(key) if key[1] is not None else None
        per_prediction = g.pop("_predictions")
        types = g["types"]
        rates: dict[str, float | None] = {}
        if n_served:
            for kind, n in per_prediction.items():
                rates[f"{kind}_per_prediction"] = round(n / n_served, 6)
            # share of the predictions served in the window that got any feedback
            rates["feedback_rate"] = round(reached.get(key, 0) / n_served, 6)
        if "thumbs" in types:
            rates["thumbs_up_rate"] = types["thumbs"]["mean"]
        if "rating" in types:
            rates["mean_rating"] = types["rating"]["mean"]
        if "completion" in types:
            rates["completion_rate"] = types["completion"]["mean"]
        if "dwell_ms" in types:
            rates["mean_dwell_ms"] = types["dwell_ms"]["mean"]
        if "click" in types and n_served:
            rates["click_through_rate"] = round(types["click"]["count"] / n_served, 6)
        arms.append({**g, "predictions": n_served, "rates": rates})
    ratings: dict[str, dict[str, int]] = {}
    for r in raw["ratings"]:
        dist = ratings.setdefault(str(r["model"]), {str(i): 0 for i in range(1, 6)})
        dist[str(int(r["value"]))] = int(r["n"])
    series: dict[int, dict[str, Any]] = {}
    for r in raw["series"]:
        point = series.setdefault(
            r["bucket"], {"start": _iso(r["bucket"]), "events": 0, "types": {}}
        )
        point["events"] += r["n"]
        point["types"][r["type"]] = {
            "count": r["n"],
            "mean": None if r["mean"] is None else round(float(r["mean"]), 6),
        }
    total = sum(totals.values())
    return {
        "model": model,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "bucket_s": bucket_s,
        "events": total,
        "events_per_min": round(total / max((until - since).total_seconds() / 60, 1e-9), 3),
        "by_type": totals,
        "orphans": orphans,
        "arms": arms,
        "rating_distribution": ratings,
        "series": [series[k] for k in sorted(series)],
    }


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()

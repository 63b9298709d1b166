"""Data-subject rights: erasure ("right to be forgotten") and access (export).

``forget(subject_id)`` reaches every store that can hold a subject's data:

* the prediction ledger (the subject's predictions and their shadow rows), the feedback ledger
  (events by the subject or about its predictions) and the labelling queue — deleted in one
  transaction, after the in-process ledger buffer is flushed;
* dataset snapshots with a declared subject column — a new snapshot without the subject's rows
  is written (lineage points back), the old one is marked erased and superseded and its data
  files are deleted (reading it then fails with a pointer to its successor);
* the response cache — the generation of every model that served the subject is bumped, so no
  cached answer for the subject's inputs survives (in-process or Redis);
* any other registered :class:`ErasureTarget` (vector indexes register here);
* the model registry — every version trained on an affected snapshot is tagged
  ``learnloop.retrain_required`` (it may have memorized the subject) and listed in the report.

The audit log gets a tombstone: the action, the counts and an HMAC of the subject id under the
privacy secret — never the id itself — so a later audit can prove the erasure happened (by
recomputing the HMAC for a given id) without keeping the personal data.

Events still in flight while the erasure runs may land after it; run ``forget`` again after
the producers have stopped sending for the subject.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from learnloop.core.cache import ResponseCache
from learnloop.core.datasets import DatasetService
from learnloop.core.errors import InvalidInput, Issue
from learnloop.core.registry import RegistryService
from learnloop.core.stores import AuditLog, SubjectStore
from learnloop.loop.jsonsafe import plain


class ErasureTarget(Protocol):
    """A store beyond the built-in ones that can hold a subject's data."""

    name: str

    def count(self, subject_id: str) -> int: ...

    def export(self, subject_id: str) -> list[dict[str, Any]]: ...

    def erase(self, subject_id: str) -> int: ...


class SubjectService:
    def __init__(
        self,
        subjects: SubjectStore,
        datasets: DatasetService,
        registry: RegistryService,
        cache: ResponseCache,
        audit: AuditLog,
        secret: bytes,
        *,
        flush: Callable[[], object] = lambda: None,
    ) -> None:
        self.subjects = subjects
        self.datasets = datasets
        self.registry = registry
        self.cache = cache
        self.audit = audit
        self.secret = secret
        self.flush = flush
        self.targets: list[ErasureTarget] = []

    def register(self, target: ErasureTarget) -> None:
        self.targets.append(target)

    def tombstone(self, subject_id: str) -> str:
        return hmac.new(self.secret, subject_id.encode(), hashlib.sha256).hexdigest()[:32]

    @staticmethod
    def _check(subject_id: str) -> str:
        if not subject_id or len(subject_id) > 255:
            raise InvalidInput("bad subject id", [Issue("subject_id", "1 to 255 characters")])
        return subject_id

    def find(self, subject_id: str) -> dict[str, int]:
        """Rows/records that hold the subject, per store."""
        self.flush()
        found = dict(self.subjects.count(self._check(subject_id)))
        found["dataset_rows"] = sum(len(rows) for _, rows in self.datasets.subject_rows(subject_id))
        for target in self.targets:
            found[target.name] = target.count(subject_id)
        return found

    def export(self, subject_id: str) -> dict[str, Any]:
        """Everything stored about the subject (right of access)."""
        self.flush()
        body: dict[str, Any] = {
            "subject_id": self._check(subject_id),
            "exported_at": datetime.now(UTC).isoformat(),
            **self.subjects.export(subject_id),
            "datasets": [
                {
                    "dataset": record.id,
                    "name": record.name,
                    "rows": rows.astype(object).where(rows.notna(), None).to_dict("records"),
                }
                for record, rows in self.datasets.subject_rows(subject_id)
            ],
        }
        for target in self.targets:
            body[target.name] = target.export(subject_id)
        return plain(body)

    def forget(self, subject_id: str, *, actor: str) -> dict[str, Any]:
        self.flush()
        tombstone = self.tombstone(self._check(subject_id))
        erased = self.subjects.erase(subject_id)
        served = erased.pop("served")
        models = sorted({m for m, _, _ in served})
        for model in models:
            self.cache.bump(model)
        datasets = self.datasets.erase_subject(subject_id, actor=actor, tombstone=tombstone)
        others = {t.name: t.erase(subject_id) for t in self.targets}
        reason = f"data-subject erasure {tombstone} on {datetime.now(UTC).date().isoformat()}"
        versions = self.registry.trained_on([d["dataset"] for d in datasets])
        for v in versions:
            self.registry.flag_retrain(v.model, v.version, reason, actor=actor)
        report = {
            "tombstone": tombstone,
            **erased,
            **others,
            "datasets": datasets,
            "cache_models_invalidated": models,
            "retrain_required": [{"model": v.model, "version": v.version} for v in versions],
        }
        self.audit.append(actor, "subject.erase", f"subject:{tombstone}", report)
        return report

"""PII rules for the prediction ledger: scrub configured input fields before rows are stored.

``privacy.ledger_rules`` maps paths inside a prediction's inputs to an action of
:class:`~learnloop.loop.privacy.pii.PiiScrubber` (``{"email": "hash", "comment": "redact"}``).
The scrubbing happens on the ledger's writer thread, off the request path; the model still sees
the original inputs, and the response cache is keyed by the original input hash.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from learnloop.core.ledger import PredictionRecord, PredictionStore
from learnloop.loop.privacy.pii import PiiScrubber


class ScrubbingPredictionStore:
    """Wraps a :class:`PredictionStore`; ``append_many`` scrubs inputs first."""

    def __init__(self, inner: PredictionStore, scrubber: PiiScrubber) -> None:
        self.inner = inner
        self.scrubber = scrubber

    def append_many(self, records: Sequence[PredictionRecord]) -> None:
        clean = [
            replace(r, inputs=self.scrubber.scrub(dict(r.inputs))[0]) if r.inputs else r
            for r in records
        ]
        self.inner.append_many(clean)

    def get(self, prediction_id: str) -> PredictionRecord | None:
        return self.inner.get(prediction_id)

    def list(
        self,
        model: str,
        *,
        limit: int = 100,
        shadow: bool | None = False,
        since: datetime | None = None,
    ) -> builtins.list[PredictionRecord]:
        return self.inner.list(model, limit=limit, shadow=shadow, since=since)

    def shadow_pairs(
        self, model: str, limit: int = 10_000
    ) -> builtins.list[tuple[PredictionRecord, PredictionRecord]]:
        return self.inner.shadow_pairs(model, limit)

"""The knowledge-tracing service: answers in, learner states kept current, insights out.

* **Answers** (``POST /v1/kt/{model}/learners/{id}/answers``) are stored durably
  (``learner_answers``) and then applied to the learner's state in every loaded version of the
  model — one step each, so the next prediction sees them at once.
* **Answers as feedback**: a ``label`` or ``correction`` event (0/1) on a prediction of a
  knowledge-tracing model is the learner's answer to the predicted item; it is stored and
  applied the same way (idempotent per feedback event), before the feedback is acknowledged.
* ``reconcile`` restores answers given as feedback that a crash kept out of the stored answers
  (replaying the ledger ⋈ feedback join through the same idempotent path).
* Versions loaded later (a new champion, another process) rebuild a learner's state from the
  stored answers the first time the learner is asked about.
* **Insights and recommendations** are computed on the loaded version (see ``insights``).
* **Datasets**: the stored answers become a dataset snapshot for retraining.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from learnloop.core.errors import InvalidInput, Issue, LearnloopError
from learnloop.core.feedback import Ack, FeedbackRecord
from learnloop.families.knowledge_tracing.family import KnowledgeTracingFamily
from learnloop.families.knowledge_tracing.schemas import Attempt
from learnloop.storage.sql.answers import LearnerAnswer, SqlLearnerAnswers

if TYPE_CHECKING:
    from learnloop.container import Container
    from learnloop.core.ledger import PredictionRecord
    from learnloop.core.serving import LoadedVersion

log = logging.getLogger("learnloop.kt")
FAMILY = KnowledgeTracingFamily.name
ANSWER_TYPES = ("label", "correction")


RIGHT = {"1", "true", "correct", "right", "1.0"}
WRONG = {"0", "false", "incorrect", "wrong", "0.0"}


def answer_value(value: Any) -> int | None:
    """A label's value as an answer: 1 (right), 0 (wrong) or None (not an answer)."""
    text = str(value).strip().lower()
    return 1 if text in RIGHT else 0 if text in WRONG else None


def to_attempt(a: LearnerAnswer) -> Attempt:
    skills = [s for s in (a.skill_ids or "").split(";") if s] or None
    return Attempt(item_id=a.item_id, skill_ids=skills, correct=1 if a.correct else 0)


class KnowledgeTracingService:
    def __init__(self, container: Container) -> None:
        self.c = container
        self.answers = SqlLearnerAnswers(container.db)

    # -- wiring -------------------------------------------------------------------------------

    def install(self) -> None:
        self.c.serving.models.on_load.append(self.attach)
        self.c.feedback.listeners.append(self)
        self.c.subjects.register(self.answers)
        self.c.subjects.register(LoadedLearnerStates(self))
        for model, version in self.c.serving.models.loaded():  # loaded before install
            self.attach(self.c.serving.models.get(model, version))

    def attach(self, loaded: LoadedVersion) -> None:
        """Give a newly loaded version the stored answers to rebuild learner states from."""
        family = loaded.instance
        if not isinstance(family, KnowledgeTracingFamily):
            return
        model = loaded.model
        # the attentive model reads its window only; recurrent ones need the whole history
        limit = family.params.max_len if family.params.model == "attentive" else 100_000

        def history(learner_id: str) -> list[Attempt]:
            return [to_attempt(a) for a in self.answers.history(model, learner_id, limit)]

        family.learners.history_source = history

    def _loaded(self, model: str | None = None) -> list[KnowledgeTracingFamily]:
        """The knowledge-tracing versions loaded in this process (of ``model``, or all)."""
        models = self.c.serving.models
        out = []
        for name, version in models.loaded():
            if model is None or name == model:
                instance = models.get(name, version).instance
                if isinstance(instance, KnowledgeTracingFamily):
                    out.append(instance)
        return out

    def check_model(self, model: str) -> None:
        """404 for an unknown model, 422 for a model of another family."""
        record = self.c.registry.get_model(model)
        if record.family != FAMILY:
            raise InvalidInput(
                "not a knowledge-tracing model",
                [Issue("model", f"{model!r} is a {record.family!r} model")],
            )

    def family_of(
        self, model: str, version: str | None = None, alias: str | None = None
    ) -> tuple[str, KnowledgeTracingFamily]:
        self.check_model(model)
        if version is None:
            version = self.c.registry.resolve(model, alias or "champion")
        else:
            self.c.registry.get_version(model, version)
        instance = self.c.serving.models.get(model, version).instance
        assert isinstance(instance, KnowledgeTracingFamily)
        return version, instance

    # -- answers ------------------------------------------------------------------------------

    def add_answers(
        self,
        model: str,
        learner_id: str,
        attempts: Sequence[Attempt],
        *,
        answered_at: Sequence[datetime | None] | None = None,
        idem_keys: Sequence[str | None] | None = None,
        source: str = "answers",
    ) -> dict[str, Any]:
        self.check_model(model)
        return self._store(model, learner_id, attempts, answered_at, idem_keys, source)

    def _store(
        self,
        model: str,
        learner_id: str,
        attempts: Sequence[Attempt],
        answered_at: Sequence[datetime | None] | None,
        idem_keys: Sequence[str | None] | None,
        source: str,
    ) -> dict[str, Any]:
        """Store answers of a checked model, then apply the new ones to the loaded states."""
        now = datetime.now(UTC)
        rows = [
            LearnerAnswer(
                model=model,
                learner_id=learner_id,
                item_id=a.item_id,
                skill_ids=";".join(a.skill_ids) if a.skill_ids else None,
                correct=int(a.correct),
                answered_at=(answered_at[i] if answered_at and answered_at[i] else now),
                source=source,
                idem_key=idem_keys[i] if idem_keys else None,
            )
            for i, a in enumerate(attempts)
        ]
        stored = self.answers.add(rows)
        fresh = [a for a, ok in zip(attempts, stored, strict=True) if ok]  # duplicates: once
        if fresh:
            for family in self._loaded(model):
                family.observe(learner_id, fresh)
        return {
            "learner_id": learner_id,
            "stored": len(fresh),
            "duplicates": len(stored) - len(fresh),
        }

    # -- FeedbackListener ---------------------------------------------------------------------

    def wants(self, records: Sequence[FeedbackRecord]) -> bool:
        if not any(r.type in ANSWER_TYPES and r.prediction_id for r in records):
            return False
        return bool(self._loaded())

    def committed(self, records: Sequence[FeedbackRecord], acks: Sequence[Ack]) -> None:
        wanted = {
            r.prediction_id: r
            for r, a in zip(records, acks, strict=True)
            if r.type in ANSWER_TYPES and r.prediction_id and not a.duplicate
        }
        if not wanted:
            return
        found = list(self.c.feedback.predictions_by_id(list(wanted)))
        missing = set(wanted) - {p.id for p in found}
        if missing:  # served moments ago: still in the ledger's buffer
            self.c.feedback.flush_ledger()
            found.extend(self.c.feedback.predictions_by_id(sorted(missing)))
        self._answers_from_feedback((p, wanted[p.id]) for p in found if p.id in wanted)

    def _answers_from_feedback(
        self, pairs: Iterable[tuple[PredictionRecord, FeedbackRecord]]
    ) -> tuple[int, int]:
        """Store and apply the answers that label events on stateful predictions carry, with
        the event id as idempotency key; (stored, already stored)."""
        stored = duplicates = 0
        tracing: dict[str, bool] = {}  # model → is a knowledge-tracing model (one lookup each)
        for p, event in pairs:
            correct = answer_value(event.payload if event.value is None else None)
            if correct is None:
                continue
            inputs = p.inputs or {}
            learner = inputs.get("learner_id")
            if not learner or inputs.get("history") is not None:
                continue  # stateless predictions carry no learner to update
            if p.model not in tracing:
                try:
                    tracing[p.model] = self.c.registry.get_model(p.model).family == FAMILY
                except LearnloopError:
                    tracing[p.model] = False
            if not tracing[p.model]:
                continue
            attempt = Attempt(
                item_id=inputs.get("item_id"),
                skill_ids=inputs.get("skill_ids") or None,
                correct=correct,
            )
            out = self._store(
                p.model, str(learner), [attempt], [event.client_ts], [f"feedback:{event.id}"],
                "feedback",
            )  # fmt: skip
            stored += out["stored"]
            duplicates += out["duplicates"]
        return stored, duplicates

    def reconcile(
        self, model: str, *, since: datetime | None = None, limit: int = 100_000
    ) -> dict[str, Any]:
        """Restore answers given as feedback that the stored answers lack.

        Feedback is committed first and its answer copied to ``learner_answers`` just after,
        before the acknowledgement; a crash between the two keeps the feedback and loses the
        copy. This replays the ledger ⋈ feedback join (label/correction events on stateful
        predictions of ``model``) through the same idempotent path: answers already stored are
        skipped, missing ones are stored and applied to the loaded learner states."""
        self.check_model(model)
        self.c.feedback.flush_ledger()
        predictions, events = self.c.feedback.analytics.labelled_predictions(
            model, since=since, limit=limit
        )
        by_id = {p.id: p for p in predictions}
        answers = sorted(
            (e for e in events if e.type in ANSWER_TYPES and e.prediction_id in by_id),
            key=lambda e: (e.received_at, e.id),
        )
        stored, duplicates = self._answers_from_feedback(
            (by_id[e.prediction_id], e) for e in answers if e.prediction_id is not None
        )
        return {
            "model": model,
            "feedback_events": len(answers),
            "restored": stored,
            "already_stored": duplicates,
        }

    # -- datasets -------------------------------------------------------------------------------

    def dataset(
        self, model: str, *, name: str | None, valid_fraction: float, actor: str
    ) -> dict[str, Any]:
        """A snapshot of the stored answers, time-split: each learner's last ``valid_fraction``
        of answers (by time, across learners) are 'valid'."""
        rows = self.answers.table(model)
        if len(rows) < 10:
            raise InvalidInput("not enough answers", [Issue("model", f"{len(rows)} stored")])
        frame = pd.DataFrame(rows)
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        cut = frame["timestamp"].quantile(1 - valid_fraction)
        frame["split"] = (frame["timestamp"] > cut).map({True: "valid", False: "train"})
        if frame["split"].nunique() < 2:
            frame.loc[frame.index[-max(1, int(len(frame) * valid_fraction)) :], "split"] = "valid"
        record = self.c.datasets.import_frame(
            frame.drop(columns=["answer_id"]),
            family=FAMILY,
            params={"target": "correct", "split_column": "split", "order_column": "timestamp"},
            name=name or f"{model}-answers",
            source=f"answers:{model}",
            actor=actor,
            subject_column="learner_id",
            extra_manifest={
                "lineage": {"source": "learner_answers", "model": model, "answers": len(frame)}
            },  # fmt: skip
        )
        return {
            "dataset_id": record.id,
            "rows": len(frame),
            "split": frame["split"].value_counts().to_dict(),
        }


class LoadedLearnerStates:
    """Erasure target: a learner's states held in memory by loaded versions."""

    name = "learner_states"

    def __init__(self, service: KnowledgeTracingService) -> None:
        self.service = service

    def count(self, subject_id: str) -> int:
        return sum(f.learners.peek(subject_id) is not None for f in self.service._loaded())

    def export(self, subject_id: str) -> list[dict[str, Any]]:
        return []  # derived from the stored answers, which are exported

    def erase(self, subject_id: str) -> int:
        return sum(f.learners.forget(subject_id) for f in self.service._loaded())

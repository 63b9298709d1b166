"""REST routes of the knowledge-tracing family (mounted by the app with every family's).

Predictions go through the platform's routes (``/v1/models/{name}/predict``, v2, gRPC): the
deployment, batching and ledger apply. These routes add what only this family has: answers
that update learner states, insights, recommendations, explanations over past attempts,
behaviour analysis and datasets from the stored answers.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import ConfigDict, Field, model_validator

from learnloop.api.security import Ingester, Predictor, Reader, Writer, container_of
from learnloop.core.auth import Principal
from learnloop.core.errors import InvalidInput, Issue
from learnloop.core.identifiers import AliasName, ModelName, ObjectId, SubjectId, Text, Version
from learnloop.core.inputs import ClientModel
from learnloop.core.times import Timestamp
from learnloop.families.knowledge_tracing.schemas import Attempt, KnowledgeTracingInput
from learnloop.families.knowledge_tracing.service import KnowledgeTracingService

router = APIRouter(prefix="/v1/kt", tags=["knowledge tracing"])


def install(container: Any) -> None:
    """Wire the family's service into a container (called once by the app)."""
    if getattr(container, "_kt_service", None) is None:
        service = KnowledgeTracingService(container)
        service.install()
        container._kt_service = service


def _service(request: Request) -> KnowledgeTracingService:
    container = container_of(request)
    install(container)
    service: KnowledgeTracingService = container._kt_service  # type: ignore[attr-defined]
    return service


class AnswerIn(Attempt):
    answered_at: Timestamp | None = Field(None, description="When it was answered (default now).")
    idempotency_key: str | None = Field(None, max_length=200)


class AnswersRequest(ClientModel):
    model_config = ConfigDict(extra="forbid")
    answers: list[AnswerIn] = Field(min_length=1, max_length=10_000)


class Band(ClientModel):
    model_config = ConfigDict(extra="forbid")
    low: float = Field(0.5, ge=0, le=1)
    high: float = Field(0.85, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Band:
        if self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        return self


class RecommendRequest(ClientModel):
    model_config = ConfigDict(extra="forbid")
    learner_id: str | None = Field(None, min_length=1, max_length=200)
    history: list[Attempt] | None = Field(None, max_length=100_000)
    k: int = Field(5, ge=1, le=100)
    band: Band = Field(default_factory=Band)
    candidates: list[Annotated[str, Field(max_length=200)]] | None = Field(
        None, max_length=10_000, description="Item ids."
    )
    version: Version | None = None
    alias: AliasName | None = None

    @model_validator(mode="after")
    def _who(self) -> RecommendRequest:
        if (self.learner_id is None) == (self.history is None):
            raise ValueError("give exactly one of learner_id and history")
        return self


class ExplainRequest(ClientModel):
    model_config = ConfigDict(extra="forbid")
    input: KnowledgeTracingInput
    version: Version | None = None
    alias: AliasName | None = None


class DatasetRequest(ClientModel):
    model_config = ConfigDict(extra="forbid")
    name: Text | None = None
    valid_fraction: float = Field(0.2, gt=0, lt=0.9)


@router.post("/{model}/learners/{learner_id}/answers")
def post_answers(
    model: ModelName, learner_id: SubjectId, body: AnswersRequest, request: Request,
    principal: Principal = Ingester,
) -> dict[str, Any]:  # fmt: skip
    """Store answered attempts (durably, before replying) and apply them to the learner's
    state in every loaded version: the next prediction sees them. Retried answers with the same
    ``idempotency_key`` are stored once."""
    attempts = [
        Attempt(item_id=a.item_id, skill_ids=a.skill_ids, correct=a.correct) for a in body.answers
    ]
    return _service(request).add_answers(
        model, learner_id, attempts,
        answered_at=[a.answered_at for a in body.answers],
        idem_keys=[a.idempotency_key for a in body.answers],
    )  # fmt: skip


@router.post("/{model}/answers/reconcile")
def reconcile_answers(
    model: ModelName,
    request: Request,
    since: Timestamp | None = Query(None, description="Only predictions served since then."),
    limit: int = Query(100_000, ge=1, le=1_000_000),
    principal: Principal = Writer,
) -> dict[str, Any]:
    """Restore answers given as feedback (labels on stateful predictions) that the stored
    answers lack — after a crash between the feedback commit and the answers copy. Idempotent:
    already stored answers are counted, not stored again."""
    return _service(request).reconcile(model, since=since, limit=limit)


@router.get("/{model}/learners/{learner_id}/insights")
def insights(
    model: ModelName,
    learner_id: SubjectId,
    request: Request,
    version: Version | None = None,
    alias: AliasName | None = None,
    k: int = Query(5, ge=1, le=100),
    band_low: float = Query(0.5, ge=0, le=1),
    band_high: float = Query(0.85, ge=0, le=1),
    principal: Principal = Reader,
) -> dict[str, Any]:
    """Mastery per skill (and topic), strengths, weaknesses, trend and recommended items."""
    from learnloop.families.knowledge_tracing.insights import learner_insights

    if band_low > band_high:
        raise InvalidInput("bad band", [Issue("band_low", f"{band_low} > band_high {band_high}")])
    service = _service(request)
    v, family = service.family_of(model, version, alias)
    state, _ = family.learner_snapshot(learner_id)
    with state.lock:
        body = learner_insights(
            family, state, topics=family.params.topics, k=k, band=(band_low, band_high)
        )
    return {"model": model, "version": v, **body}


@router.post("/{model}/recommend")
def recommend(
    model: ModelName, body: RecommendRequest, request: Request, principal: Principal = Predictor
) -> dict[str, Any]:
    """Next items by expected learning gain within a target difficulty band."""
    from learnloop.families.knowledge_tracing import insights

    service = _service(request)
    v, family = service.family_of(model, body.version, body.alias)
    band = (body.band.low, body.band.high)
    if body.learner_id is not None:
        state, _ = family.learner_snapshot(body.learner_id)
        with state.lock:
            items = insights.recommend(
                family, state, k=body.k, band=band, candidates=body.candidates
            )
    else:
        state = family._new_state("<request>")
        family._apply(state, list(body.history or [])[-family.params.max_len :])
        items = insights.recommend(family, state, k=body.k, band=band, candidates=body.candidates)
    return {"model": model, "version": v, "band": list(band), "recommendations": items}


@router.post("/{model}/explain")
def explain(
    model: ModelName, body: ExplainRequest, request: Request, principal: Principal = Reader
) -> dict[str, Any]:
    """Which past attempts drove the prediction: integrated gradients over the answers (and the
    attentive model's attention), or leave-one-out for BKT."""
    from learnloop.families.knowledge_tracing.explain import attributions

    v, family = _service(request).family_of(model, body.version, body.alias)
    return {"model": model, "version": v, **attributions(family, body.input)}


@router.get("/{model}/analysis")
def analysis(
    model: ModelName,
    request: Request,
    dataset_id: ObjectId,
    version: Version | None = None,
    alias: AliasName | None = None,
    principal: Principal = Reader,
) -> dict[str, Any]:
    """Calibration by skill, accuracy by sequence position and on first attempts of a skill,
    on a labelled dataset snapshot."""
    from learnloop.families.knowledge_tracing.insights import behaviour

    container = container_of(request)
    v, family = _service(request).family_of(model, version, alias)
    frame = container.datasets.load(dataset_id)
    table = family.predict_table(frame)
    return {"model": model, "version": v, "dataset_id": dataset_id, **behaviour(table)}


@router.post("/{model}/datasets")
def dataset_from_answers(
    model: ModelName, body: DatasetRequest, request: Request, principal: Principal = Writer
) -> dict[str, Any]:
    """A dataset snapshot of the model's stored answers, time-split for retraining."""
    return _service(request).dataset(
        model, name=body.name, valid_fraction=body.valid_fraction, actor=principal.name
    )

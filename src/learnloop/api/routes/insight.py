"""Explanations (SHAP, LIME, global importance), the sensitive-attribute store and bias
detection."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import ConfigDict, Field

from learnloop.api.security import Admin, Predictor, Reader, Writer, container_of
from learnloop.core.auth import Principal
from learnloop.core.identifiers import (
    AliasName,
    ModelName,
    ObjectId,
    Seed,
    SubjectId,
    Text,
    Version,
)
from learnloop.core.inputs import ClientModel
from learnloop.core.limits import json_object

router = APIRouter(tags=["explanations", "fairness"])


class ExplainIn(ClientModel):
    model_config = ConfigDict(extra="forbid")

    inputs: list[json_object(10_000)] = Field(  # type: ignore[valid-type]
        ..., min_length=1, max_length=100
    )
    method: Literal["shap", "lime", "attribution"] = Field(
        "shap",
        description="shap or lime (tabular); families with their own explanations (knowledge "
        "tracing: past attempts) answer any method with theirs, named in the response.",
    )
    version: Version | None = None
    alias: AliasName | None = Field(None, description="Default: champion.")
    seed: Seed = 0


@router.post("/v1/models/{name}/explain")
def explain(
    name: ModelName, body: ExplainIn, request: Request, principal: Principal = Predictor
) -> dict[str, Any]:
    """Per-prediction attributions to the original features: SHAP (tree/linear/kernel as fits
    the estimator, additive) or LIME (a local linear surrogate)."""
    return container_of(request).insight.explain(
        name,
        body.inputs,
        method=body.method,
        version=body.version,
        alias=body.alias,
        seed=body.seed,
    )


@router.get("/v1/models/{name}/importance")
def importance(
    name: ModelName,
    request: Request,
    version: Version | None = None,
    alias: AliasName | None = None,
    rows: int = Query(1000, ge=1, le=100_000),
    principal: Principal = Reader,
) -> dict[str, Any]:
    """Global importance: mean |SHAP| per feature over the training snapshot (a sample), and
    the estimator's own importance."""
    return container_of(request).insight.importance(name, version=version, alias=alias, rows=rows)


class SensitiveRecord(ClientModel):
    model_config = ConfigDict(extra="forbid")

    subject_id: str = Field(..., min_length=1, max_length=255)
    attributes: dict[
        Text,
        Annotated[str, Field(max_length=1024)]
        | Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
        | Annotated[float, Field(ge=-1e300, le=1e300)]
        | bool
        | None,
    ] = Field(max_length=256)


class SensitiveIn(ClientModel):
    model_config = ConfigDict(extra="forbid")

    records: list[SensitiveRecord] = Field(..., min_length=1, max_length=100_000)


@router.put("/v1/sensitive-attributes")
def put_sensitive(
    body: SensitiveIn, request: Request, principal: Principal = Admin
) -> dict[str, Any]:
    """Store sensitive attributes by subject id (admin only; kept apart from features)."""
    c = container_of(request)
    n = c.sensitive.put_many({r.subject_id: r.attributes for r in body.records})
    c.audit.append(principal.name, "sensitive.put", "sensitive_attributes", {"subjects": n})
    return {"stored": n}


@router.get("/v1/sensitive-attributes/{subject_id}")
def get_sensitive(
    subject_id: SubjectId, request: Request, principal: Principal = Admin
) -> dict[str, Any]:
    found = container_of(request).sensitive.get_many([subject_id])
    return {"subject_id": subject_id, "attributes": found.get(subject_id)}


class BiasIn(ClientModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelName
    dataset_id: ObjectId = Field(
        ..., description="Labelled evaluation snapshot with a subject column."
    )
    attributes: list[Text] = Field(
        ..., min_length=1, max_length=64, description="Sensitive attributes to use."
    )
    version: Version | None = None
    alias: AliasName | None = None
    positive: Annotated[int, Field(ge=-(2**31), le=2**31 - 1)] | Text | bool = 1
    bounds: dict[Text, Annotated[float, Field(ge=0, le=1e6)]] | None = Field(
        None,
        max_length=32,
        description="e.g. {'demographic_parity_difference': 0.1}: adds a pass/fail.",
    )
    min_group_size: int = Field(30, ge=1, le=1_000_000_000)
    n_boot: int = Field(500, ge=0, le=10_000)
    intersectional: bool = True


@router.post("/v1/bias/detect")
def detect(body: BiasIn, request: Request, principal: Principal = Writer) -> dict[str, Any]:
    """Group metrics (Fairlearn), demographic parity, equalized odds, equal opportunity with
    bootstrap CIs, small groups reported, intersections; sensitive attributes joined from their
    own store by subject id."""
    return container_of(request).insight.bias(
        body.model,
        body.dataset_id,
        body.attributes,
        version=body.version,
        alias=body.alias,
        positive=body.positive,
        bounds=body.bounds,
        config={
            "min_group_size": body.min_group_size,
            "n_boot": body.n_boot,
            "intersectional": body.intersectional,
        },
    )

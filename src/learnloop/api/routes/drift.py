"""Drift monitoring: run a monitor over a window of the ledger, read stored reports (JSON or a
readable HTML page)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import ConfigDict, Field

from learnloop.api.routes.feedback import parse_duration
from learnloop.api.security import Reader, Writer, container_of
from learnloop.core.auth import Principal
from learnloop.core.identifiers import Duration, ModelName, ObjectId, Text
from learnloop.core.inputs import ClientModel
from learnloop.loop.drift import DriftConfig, drift_html

router = APIRouter(prefix="/v1/drift", tags=["drift"])


class MonitorIn(ClientModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelName
    window: Duration = Field("24h", description="The current window, ending now (1h, 7d, …).")
    reference: Literal["training", "previous"] = Field(
        "training", description="Training snapshot of the serving version, or the window before."
    )
    reference_window: Duration | None = Field(None, description="Length of the previous window.")
    columns: list[Text] | None = Field(
        None, max_length=10_000, description="Only these input columns."
    )
    # effect sizes below 1e-6 and test levels outside [1e-12, 0.5] mean nothing a sample can
    # tell apart (and break the minimum-detectable-effect solvers)
    wasserstein_threshold: float | None = Field(None, ge=1e-6, le=1e6)
    js_threshold: float | None = Field(None, ge=1e-6, le=1)
    psi_threshold: float | None = Field(None, ge=1e-6, le=1e6)
    alpha: float | None = Field(None, ge=1e-12, le=0.5)


@router.post("/monitor")
def monitor(body: MonitorIn, request: Request, principal: Principal = Writer) -> dict[str, Any]:
    """Run the drift monitor now: data drift per input column, prediction drift and concept
    drift on the labelled window. The report is stored; drift raises an alert."""
    overrides = {
        k: v
        for k, v in body.model_dump().items()
        if k in ("wasserstein_threshold", "js_threshold", "psi_threshold", "alpha") and v
    }
    return container_of(request).drift.run(
        body.model,
        window=parse_duration(body.window, "window"),
        reference=body.reference,
        reference_window=(
            parse_duration(body.reference_window, "reference_window")
            if body.reference_window
            else None
        ),
        columns=body.columns,
        config=DriftConfig(**overrides),
    )


@router.get(
    "/report/{model}",
    response_model=None,
    responses={
        200: {
            "description": "The report as JSON, or as an HTML page with `format=html`.",
            "content": {"text/html": {"schema": {"type": "string"}}},
        }
    },
)
def report(
    model: ModelName,
    request: Request,
    id: ObjectId | None = Query(None, description="A stored report (default: the newest)."),
    format: Literal["json", "html"] = "json",
    principal: Principal = Reader,
) -> dict[str, Any] | HTMLResponse:
    stored = container_of(request).drift.reports.get(model, "drift", id)
    if format == "html":
        title = f"Drift of {model} — {stored['created_at']}"
        return HTMLResponse(drift_html(stored["report"]["data"], title=title))
    return stored


@router.get("/reports/{model}")
def reports(
    model: ModelName,
    request: Request,
    limit: int = Query(50, ge=1, le=1000),
    principal: Principal = Reader,
) -> list[dict[str, Any]]:
    return container_of(request).drift.reports.list(model, "drift", limit)

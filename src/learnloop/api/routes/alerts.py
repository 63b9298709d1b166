"""Alert channels (webhooks, log) and deliveries: configure where alerts go, see what failed."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import ConfigDict, Field, model_validator

from learnloop.api.security import Admin, Reader, container_of
from learnloop.core.auth import Principal
from learnloop.core.identifiers import ObjectId, Text
from learnloop.core.inputs import ClientModel

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])


class ChannelIn(ClientModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=128)
    kind: Literal["webhook", "log"] = "webhook"
    url: str | None = Field(None, max_length=2048, description="Webhook URL (http or https).")
    kinds: list[Text] | None = Field(
        None,
        max_length=64,
        description="Alert kinds sent here (drift, confidence_shift, …); unset: all.",
    )
    min_severity: Literal["info", "warning", "critical"] = "info"

    @model_validator(mode="after")
    def _url(self) -> ChannelIn:
        if self.kind == "webhook" and not (self.url or "").startswith(("http://", "https://")):
            raise ValueError("url: a webhook needs an http(s) URL")
        return self


@router.post("/configure", status_code=201)
def configure(body: ChannelIn, request: Request, principal: Principal = Admin) -> dict[str, Any]:
    """Add a channel. Every new alert that matches its kinds and severity is delivered to it:
    webhooks get a signed JSON POST, retried with backoff; failures stay visible."""
    c = container_of(request)
    channel = c.alerts.add_channel(body.name, body.kind, body.url, body.kinds, body.min_severity)
    c.audit.append(principal.name, "alerts.configure", f"channel:{body.name}", channel)
    return channel


@router.get("/channels")
def channels(request: Request, principal: Principal = Admin) -> list[dict[str, Any]]:
    return container_of(request).alerts.channels()


@router.delete("/channels/{channel_id}", status_code=204)
def delete_channel(channel_id: ObjectId, request: Request, principal: Principal = Admin) -> None:
    c = container_of(request)
    channel = c.alerts.channel(channel_id)
    c.alerts.delete_channel(channel_id)
    c.audit.append(principal.name, "alerts.delete_channel", f"channel:{channel['name']}", {})


@router.get("/deliveries")
def deliveries(
    request: Request,
    status: Literal["pending", "delivered", "failed"] | None = None,
    limit: int = Query(100, ge=1, le=10_000),
    principal: Principal = Reader,
) -> list[dict[str, Any]]:
    """Deliveries, newest first: attempts, last error, next attempt."""
    return container_of(request).alerts.deliveries(status, limit)

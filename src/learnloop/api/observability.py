"""Request ids, JSON access logs, body-size limit, the JSON edge rule and Prometheus metrics.

``RequestMiddleware`` is plain ASGI (no per-request task hops): it takes ``X-Request-ID`` from
the request or makes one, echoes it on the response, refuses bodies over the limit with 413,
refuses JSON bodies holding ``NaN``/``Infinity`` with 422 (see ``api/jsonbody.py``), and records
a counter and a latency histogram labelled by route template, method and status.

Metric labels never come from client input: the route label is the matched route's template
(``<unmatched>`` otherwise), the method one of the standard methods (``OTHER`` otherwise), and
the serving metrics label versions only with versions the registry knows (``other`` otherwise).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from learnloop.api.errors import error_body
from learnloop.api.jsonbody import nonstandard_constants, scanned_length
from learnloop.core.errors import Issue, LearnloopError
from learnloop.core.ids import new_id
from learnloop.core.records import JobStatus
from learnloop.logs import request_id_var

access_log = logging.getLogger("learnloop.access")
log = logging.getLogger("learnloop.api")

OTHER = "other"  # the label of a version the registry does not know
MAX_KNOWN_VERSIONS = 100_000
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ApiMetrics:
    """The app's Prometheus registry (one per app, so several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "learnloop_http_requests_total",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "learnloop_http_request_duration_seconds",
            "HTTP request latency by route template and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )


def registry_versions(registry: Any) -> Callable[[str, str], bool]:
    """``known_version`` for :class:`PrometheusServingMetrics`: whether ``registry`` (a
    ``RegistryService``) has the version."""

    def known(model: str, version: str) -> bool:
        try:
            registry.get_version(model, version)
        except LearnloopError:
            return False
        return True

    return known


class PrometheusServingMetrics:
    """The serving engine's metrics sink, on an :class:`ApiMetrics` registry.

    Label values come from the server: a model and version that served, an arm of the
    deployment. The one place a version may not exist is a fallback from a version that failed
    to load; with ``known_version`` such a version is labelled ``other`` (known ones are
    remembered, so the check runs once per version)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        known_version: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.known_version = known_version
        self._known: set[tuple[str, str]] = set()
        self.requests = Counter(
            "learnloop_serving_requests_total",
            "Predict requests by model, version and arm.",
            ["model", "version", "arm"],
            registry=registry,
        )
        self.items = Counter(
            "learnloop_serving_items_total",
            "Items predicted by model, version and arm.",
            ["model", "version", "arm"],
            registry=registry,
        )
        self.latency = Histogram(
            "learnloop_serving_latency_seconds",
            "Engine time per request by model, version and arm.",
            ["model", "version", "arm"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.cache_hits = Counter(
            "learnloop_serving_cache_hits_total",
            "Items answered from the response cache.",
            ["model"],
            registry=registry,
        )
        self.fallbacks = Counter(
            "learnloop_serving_fallbacks_total",
            "Times a version failed and the next in the chain was tried.",
            ["model", "version", "reason"],
            registry=registry,
        )
        self.batch_size = Histogram(
            "learnloop_serving_batch_size",
            "Items per model call (adaptive batching).",
            ["model", "version"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=registry,
        )
        self.queue_time = Histogram(
            "learnloop_serving_queue_seconds",
            "Time the oldest item of a batch waited.",
            ["model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.shadow_drops = Counter(
            "learnloop_serving_shadow_dropped_total",
            "Shadow requests dropped (pool busy).",
            ["model"],
            registry=registry,
        )

    def request(
        self, model: str, version: str, arm: str, items: int, seconds: float, cache_hits: int
    ) -> None:
        self.requests.labels(model, version, arm).inc()
        self.items.labels(model, version, arm).inc(items)
        self.latency.labels(model, version, arm).observe(seconds)
        if cache_hits:
            self.cache_hits.labels(model).inc(cache_hits)

    def fallback(self, model: str, version: str, reason: str) -> None:
        self.fallbacks.labels(model, self._version_label(model, version), reason).inc()

    def _version_label(self, model: str, version: str) -> str:
        if self.known_version is None or (model, version) in self._known:
            return version
        try:
            known = self.known_version(model, version)
        except Exception:
            known = False
        if not known:
            return OTHER
        if len(self._known) < MAX_KNOWN_VERSIONS:
            self._known.add((model, version))
        return version

    def batch(self, model: str, version: str, size: int, queue_seconds: float) -> None:
        self.batch_size.labels(model, version).observe(size)
        self.queue_time.labels(model, version).observe(queue_seconds)

    def shadow_dropped(self, model: str) -> None:
        self.shadow_drops.labels(model).inc()


class JobsCollector:
    """Counts jobs by status at scrape time."""

    def __init__(self, count_by_status: Any) -> None:
        self.count_by_status = count_by_status

    def collect(self) -> Iterable[Metric]:
        gauge = GaugeMetricFamily("learnloop_jobs", "Jobs by status.", labels=["status"])
        counts = self.count_by_status()
        for status in JobStatus:
            gauge.add_metric([status.value], counts.get(status.value, 0))
        yield gauge


class RequestMiddleware:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        rid = headers.get(b"x-request-id", b"").decode()[:64] or new_id()
        token = request_id_var.set(rid)
        started = time.perf_counter()
        status = 500
        response_started = False
        length = headers.get(b"content-length")
        try:
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                status = 413
                await _send_json(send, 413, rid, _too_large(self.max_body_bytes))
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_bytes:
                        raise BodyTooLarge(self.max_body_bytes)
                return message

            async def send_with_id(message: Message) -> None:
                nonlocal status, response_started
                if message["type"] == "http.response.start":
                    response_started = True
                    status = message["status"]
                    message.setdefault("headers", [])
                    message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
                await send(message)

            try:
                app_receive = limited_receive
                scan = scanned_length(headers)
                if scan is not None:
                    # JSON bodies are read whole here (the route would read them whole too) and
                    # refused when they hold NaN/Infinity, which JSON does not have
                    messages = await _read_body(limited_receive)
                    body = b"".join(m.get("body", b"") for m in messages)
                    issues = nonstandard_constants(body if scan < 0 else body[:scan])
                    if issues:
                        status = 422
                        await _send_json(send, 422, rid, _not_json(issues))
                        return
                    app_receive = _replay(body, messages, receive)
                await self.app(scope, app_receive, send_with_id)
            except BodyTooLarge:
                status = 413
                await _send_json(send, 413, rid, _too_large(self.max_body_bytes))
            except Exception:
                # answer in the API's error shape (with the request id) instead of a plain 500
                log.exception(
                    "unhandled error",
                    extra={"route": getattr(scope.get("route"), "path", "<unmatched>")},
                )
                if status == 500 and not response_started:
                    await _send_json(
                        send, 500, rid, error_body("InternalError", "internal server error")
                    )
                else:
                    raise
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", "<unmatched>")
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            self.metrics.requests.labels(template, method, str(status)).inc()
            self.metrics.latency.labels(template, method).observe(elapsed)
            if template not in ("/metrics", "/v1/health"):
                access_log.info(
                    "request",
                    extra={
                        "method": method,
                        # the route's template, not the path: paths carry subject and learner
                        # ids, which must not outlive an erasure in the logs
                        "route": template,
                        "status": status,
                        "ms": round(elapsed * 1000, 2),
                    },
                )
            request_id_var.reset(token)


async def _read_body(receive: Receive) -> list[Message]:
    """Every message up to the body's last chunk (or a disconnect)."""
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replay(body: bytes, messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives the buffered body in one message, then waits on ``receive``."""
    pending = (
        [{"type": "http.request", "body": body, "more_body": False}]
        if messages[-1]["type"] == "http.request"
        else [messages[-1]]  # the client went away while sending
    )

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


class BodyTooLarge(HTTPException):
    """Raised while reading a body over the limit. An HTTPException, so FastAPI's body parsing
    lets it through to the error handler (413) instead of reporting a parse error (400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


async def _send_json(send: Send, status: int, rid: str, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"x-request-id", rid.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _not_json(issues: list[Issue]) -> dict[str, Any]:
    return error_body(
        "InvalidInput",
        "invalid JSON: NaN and Infinity are not JSON values",
        [{"loc": i.loc, "message": i.message} for i in issues],
    )


def _too_large(limit: int) -> dict[str, Any]:
    return error_body("PayloadTooLarge", f"request body over {limit} bytes")

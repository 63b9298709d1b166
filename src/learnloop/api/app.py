"""``create_app(container)``: the FastAPI application. Nothing runs at import time."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import Depends, FastAPI

from learnloop import __version__
from learnloop.api.errors import install_error_handlers, route_rules
from learnloop.api.observability import (
    ApiMetrics,
    JobsCollector,
    PrometheusServingMetrics,
    RequestMiddleware,
    registry_versions,
)
from learnloop.api.openapi import install_openapi
from learnloop.api.routes import (
    active_learning,
    admin,
    alerts,
    analytics,
    batch,
    datasets,
    deployments,
    drift,
    evaluation,
    experiments,
    feedback,
    insight,
    jobs,
    models,
    policy,
    quality,
    subjects,
    system,
    training,
    tuning,
    v2,
)
from learnloop.container import Container
from learnloop.storage.sql.jobs import count_jobs_by_status


def create_app(container: Container, *, workers: bool = True) -> FastAPI:
    """Build the app over ``container``. On startup the container is opened (database checked
    and migrated) and, with ``workers``, the in-process job runner starts."""

    family_apis = container.families.api_modules()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container.open()
        for module in family_apis:  # families wire their services (hooks, listeners) first
            install = getattr(module, "install", None)
            if install is not None:
                install(container)
        # synchronous routes (predict waits on its batch) run on this many threads at once
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = container.settings.serving.thread_limit
        # request threads hand work to the model's batcher thread and back: with Python's
        # default 5 ms GIL switch interval each hand-off can cost milliseconds of latency
        sys.setswitchinterval(container.settings.serving.gil_switch_interval_ms / 1000)
        if workers and container.settings.jobs.workers > 0:
            container.start_workers()
        if workers:
            container.alert_dispatcher.start()  # webhook and log deliveries of alerts
            if container.settings.policy.enabled:
                container.policy_runner.start()  # closes the loop: retrain, gate, roll out

        # load the versions in use now, not on the first requests (MLflow's first query alone
        # takes a second or more)
        def warm() -> None:
            container.warm()
            gc.freeze()  # start-up objects leave the collector's view: shorter GC pauses

        threading.Thread(target=warm, name="ll-warm", daemon=True).start()
        try:
            yield
        finally:
            container.close()

    app = FastAPI(
        title="learnloop",
        version=__version__,
        description="Self-hosted continuous-learning ML service.",
        lifespan=lifespan,
        docs_url=None,  # served offline by install_openapi
        redoc_url=None,
        # learnloop exports its own Prometheus metrics; FastAPI's OpenTelemetry hooks would
        # look up the global providers (environment reads) on every request
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # shadowed paths answer 405, unknown query parameters 422 (see route_rules)
        dependencies=[Depends(route_rules)],
    )
    app.state.container = container
    metrics = ApiMetrics()
    metrics.registry.register(JobsCollector(lambda: count_jobs_by_status(container.job_store)))
    app.state.metrics = metrics
    if container.serving_metrics is None:
        container.serving_metrics = PrometheusServingMetrics(
            metrics.registry, known_version=registry_versions(container.registry)
        )
        if "serving" in container.__dict__:  # the engine was built before the app
            container.serving.metrics = container.serving_metrics
    install_error_handlers(app)
    for module in (
        system,
        models,
        deployments,
        experiments,
        feedback,
        subjects,
        quality,
        policy,
        evaluation,
        analytics,
        insight,
        alerts,
        drift,
        active_learning,
        batch,
        datasets,
        jobs,
        training,
        tuning,
        admin,
        v2,
    ):
        app.include_router(module.router)
    for module in family_apis:
        app.include_router(module.router)
    install_openapi(app)
    app.add_middleware(
        RequestMiddleware, metrics=metrics, max_body_bytes=container.settings.api.max_body_bytes
    )
    return app


def app_from_settings() -> FastAPI:
    """App factory for multi-process serving (``learnloop serve --processes N``): every
    process builds its own container (engine, caches, ledger writer, job workers) from the
    environment's settings; state is shared through the stores."""
    from learnloop.logs import configure_logging
    from learnloop.settings import Settings

    settings = Settings()
    configure_logging(settings.logging.level, settings.logging.json_format)
    return create_app(Container(settings))

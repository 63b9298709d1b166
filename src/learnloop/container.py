"""Composition root: settings → concrete backends → services.

Nothing here runs at import time. ``Container(settings)`` opens nothing until ``open()``:
that checks the database (refusing corrupt or foreign ones), applies migrations when
``database.migrate_on_start`` is set, and builds the services.
"""

from __future__ import annotations

import logging
import os
import secrets
from functools import cached_property
from typing import TYPE_CHECKING

from learnloop.core.auth import KeyService
from learnloop.core.cache import MemoryResponseCache, ResponseCache
from learnloop.core.catalog import FamilyCatalog
from learnloop.core.datasets import DatasetService
from learnloop.core.errors import StorageError
from learnloop.core.experiments import OutcomeSource
from learnloop.core.feedback import FeedbackCommitter
from learnloop.core.jobs import JobHandler, JobRunner, JobService, RunnerConfig
from learnloop.core.ledger import LedgerWriter, PredictionStore
from learnloop.core.paths import FileRoots
from learnloop.core.registry import RegistryService
from learnloop.core.rollout import DeploymentService
from learnloop.core.serving import ServingConfig, ServingEngine, ServingMetrics
from learnloop.loop.alerting import AlertDispatcher
from learnloop.loop.analytics import Analytics
from learnloop.loop.batch import BatchService
from learnloop.loop.data_services import DpReleaseService, SynthesisService
from learnloop.loop.dataset_builder import LoopDatasetBuilder
from learnloop.loop.evaluator import Evaluator
from learnloop.loop.feedback import FeedbackService
from learnloop.loop.gdpr import SubjectService
from learnloop.loop.labelling import ActiveLearningService
from learnloop.loop.model_insight import ModelInsight
from learnloop.loop.monitoring import DriftMonitor
from learnloop.loop.policy import PolicyEngine, PolicyRunner
from learnloop.loop.training import TrainingService
from learnloop.loop.tuning import TuningService
from learnloop.settings import Settings
from learnloop.storage.registry.mlflow_registry import MlflowModelRegistry
from learnloop.storage.sql.alerts import SqlAlertStore
from learnloop.storage.sql.database import Database
from learnloop.storage.sql.feedback import SqlFeedbackAnalytics, SqlFeedbackStore
from learnloop.storage.sql.jobs import SqlJobStore
from learnloop.storage.sql.labelling import SqlLabelQueue
from learnloop.storage.sql.monitors import SqlMonitorReports
from learnloop.storage.sql.policy import SqlPolicyStore
from learnloop.storage.sql.privacy import SqlPrivacyBudgets
from learnloop.storage.sql.sensitive import SqlSensitiveStore
from learnloop.storage.sql.serving import SqlDeploymentStore, SqlPredictionStore
from learnloop.storage.sql.stores import (
    SqlAliasHistory,
    SqlAuditLog,
    SqlDatasetCatalog,
    SqlKeyStore,
)
from learnloop.storage.sql.subjects import SqlSubjectStore

if TYPE_CHECKING:
    from learnloop.loop.privacy.pii import PiiScrubber

log = logging.getLogger("learnloop")


class Container:
    """Holds one instance of every backend and service for a process."""

    def __init__(self, settings: Settings | None = None, *, migrate: bool | None = None) -> None:
        self.settings = settings or Settings()
        self._migrate = self.settings.database.migrate_on_start if migrate is None else migrate
        self._opened = False
        self.runner: JobRunner | None = None
        self.serving_metrics: ServingMetrics | None = None  # set by the API before first use
        # outcome per prediction id for A/B results; the feedback join plugs in here
        self.outcomes: OutcomeSource | None = None

    def open(self) -> Container:
        if self._opened:
            return self
        self.settings.home.mkdir(parents=True, exist_ok=True)
        (self.settings.home / "imports").mkdir(exist_ok=True)  # the default import folder
        if self._migrate:
            before, after = self.db.migrate()
            if before != after:
                log.info("database migrated", extra={"from": before, "to": after})
        elif not (self.db.check() and self.db.is_current()):
            raise StorageError("database is not migrated to this version: run `learnloop migrate`")
        self._opened = True
        if self.outcomes is None:
            self.outcomes = self.feedback.outcomes()
        return self

    def close(self) -> None:
        if self.runner is not None:
            self.runner.stop()
            self.runner = None
        if "serving" in self.__dict__:
            self.serving.close()
        if "ledger" in self.__dict__ and self.ledger is not None:
            self.ledger.close()
        if "policy_runner" in self.__dict__:
            self.policy_runner.stop()
        if "alert_dispatcher" in self.__dict__:
            self.alert_dispatcher.stop()
        if "feedback_committer" in self.__dict__:
            self.feedback_committer.close()
        if "db" in self.__dict__:
            self.db.dispose()

    # -- backends -------------------------------------------------------------------------------

    @cached_property
    def db(self) -> Database:
        s = self.settings.database
        return Database(
            self.settings.database_url, busy_timeout_ms=s.busy_timeout_ms, pool_size=s.pool_size
        )

    @cached_property
    def families(self) -> FamilyCatalog:
        return FamilyCatalog.default()

    @cached_property
    def model_registry(self) -> MlflowModelRegistry:
        return MlflowModelRegistry(
            self.settings.tracking_uri,
            self.settings.artifact_root,
            self.settings.registry.experiment,
            cache_dir=self.settings.home / "models",
        )

    @cached_property
    def audit(self) -> SqlAuditLog:
        return SqlAuditLog(self.db)

    @cached_property
    def job_store(self) -> SqlJobStore:
        return SqlJobStore(self.db)

    # -- services -----------------------------------------------------------------------------

    @cached_property
    def keys(self) -> KeyService:
        return KeyService(SqlKeyStore(self.db), self.audit)

    @cached_property
    def registry(self) -> RegistryService:
        service = RegistryService(self.model_registry, SqlAliasHistory(self.db), self.audit)
        service.add_delete_guard(lambda model, alias: self.deployments.alias_in_use(model, alias))
        return service

    @cached_property
    def datasets(self) -> DatasetService:
        return DatasetService(
            SqlDatasetCatalog(self.db), self.families, self.settings.datasets_dir, self.audit
        )

    @cached_property
    def training(self) -> TrainingService:
        return TrainingService(self.families, self.datasets, self.registry)

    @cached_property
    def deployments(self) -> DeploymentService:
        return DeploymentService(SqlDeploymentStore(self.db), self.registry, self.audit)

    @cached_property
    def ledger(self) -> LedgerWriter | None:
        s = self.settings.serving
        if not s.ledger_enabled:
            return None
        store: PredictionStore = self.predictions
        rules = self.settings.privacy.ledger_rules
        if rules:
            from learnloop.loop.privacy.ledger import ScrubbingPredictionStore
            from learnloop.loop.privacy.pii import PiiScrubber

            store = ScrubbingPredictionStore(
                store, PiiScrubber(rules, secret=self.privacy_secret, text_fields=())
            )
        return LedgerWriter(
            store,
            queue_size=s.ledger_queue_size,
            batch_size=s.ledger_batch_size,
            flush_interval_ms=s.ledger_flush_ms,
        )

    @cached_property
    def predictions(self) -> SqlPredictionStore:
        return SqlPredictionStore(self.db)

    @cached_property
    def privacy_secret(self) -> bytes:
        """Salt of PII hashes and erasure tombstones: the configured secret, else one created
        once under home (mode 0600) so hashes stay stable across restarts."""
        configured = self.settings.privacy.secret
        if configured is not None:
            return configured.get_secret_value().encode()
        path = self.settings.home / "privacy.secret"
        if not path.exists():
            self.settings.home.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        return path.read_text().strip().encode()

    @cached_property
    def feedback_store(self) -> SqlFeedbackStore:
        return SqlFeedbackStore(self.db)

    @cached_property
    def feedback_committer(self) -> FeedbackCommitter:
        f = self.settings.feedback
        ledger = self.ledger
        return FeedbackCommitter(
            self.feedback_store,
            max_group_events=f.max_group_events,
            queue_size=f.queue_size,
            pending_predictions=ledger.unflushed if ledger is not None else None,
        )

    @cached_property
    def pii(self) -> PiiScrubber:
        from learnloop.loop.privacy.pii import PiiScrubber

        return PiiScrubber(self.settings.feedback.pii_rules, secret=self.privacy_secret)

    @cached_property
    def feedback(self) -> FeedbackService:
        ledger = self.ledger
        return FeedbackService(
            self.feedback_store,
            self.feedback_committer,
            SqlFeedbackAnalytics(self.db),
            self.predictions.get_many,
            scrub=lambda record: self.pii.scrub(record)[0],
            flush_ledger=(lambda: ledger.flush(5)) if ledger is not None else None,
        )

    @cached_property
    def subjects(self) -> SubjectService:
        ledger = self.ledger
        service = SubjectService(
            SqlSubjectStore(self.db),
            self.datasets,
            self.registry,
            self.response_cache,
            self.audit,
            self.privacy_secret,
            flush=(lambda: ledger.flush(10)) if ledger is not None else (lambda: None),
        )
        service.register(self.sensitive)  # sensitive attributes are personal data too
        return service

    @cached_property
    def dataset_builder(self) -> LoopDatasetBuilder:
        return LoopDatasetBuilder(self.feedback, self.datasets, self.registry)

    @cached_property
    def dp_releases(self) -> DpReleaseService:
        p = self.settings.privacy
        return DpReleaseService(
            self.datasets,
            SqlPrivacyBudgets(self.db),
            self.audit,
            default_epsilon=p.dp_epsilon,
            default_delta=p.dp_delta,
        )

    @cached_property
    def synthesis(self) -> SynthesisService:
        return SynthesisService(self.datasets, self.families)

    @cached_property
    def active_learning(self) -> ActiveLearningService:
        return ActiveLearningService(
            SqlLabelQueue(self.db),
            SqlFeedbackAnalytics(self.db),
            self.feedback,
            lease_s=self.settings.feedback.label_lease_s,
        )

    @cached_property
    def alerts(self) -> SqlAlertStore:
        return SqlAlertStore(self.db)

    @cached_property
    def alert_dispatcher(self) -> AlertDispatcher:
        return AlertDispatcher(self.alerts, self.privacy_secret)

    @cached_property
    def analytics(self) -> Analytics:
        return Analytics(self.registry, self.model_registry, self.predictions, self.feedback)

    @cached_property
    def sensitive(self) -> SqlSensitiveStore:
        return SqlSensitiveStore(self.db)

    @cached_property
    def insight(self) -> ModelInsight:
        return ModelInsight(self.serving, self.registry, self.datasets, self.sensitive)

    @cached_property
    def tuning(self) -> TuningService:
        return TuningService(
            self.families,
            self.datasets,
            self.registry,
            database_url=self.settings.database_url,
            ray_address=self.settings.ray.address,
        )

    @cached_property
    def policy(self) -> PolicyEngine:
        return PolicyEngine(
            SqlPolicyStore(self.db),
            self.registry,
            self.deployments,
            self.jobs,
            self.training,
            self.dataset_builder,
            self.datasets,
            self.evaluator,
            self.feedback,
            self.predictions,
            self.drift.reports,
            self.alerts,
            drift=self.drift,
            insight=self.insight,
        )

    @cached_property
    def policy_runner(self) -> PolicyRunner:
        return PolicyRunner(self.policy, self.settings.policy.tick_s)

    @cached_property
    def evaluator(self) -> Evaluator:
        return Evaluator(self.insight, self.datasets, self.registry)

    @cached_property
    def drift(self) -> DriftMonitor:
        return DriftMonitor(
            self.predictions,
            self.feedback,
            self.registry,
            self.datasets,
            SqlMonitorReports(self.db),
            self.alerts,
        )

    @cached_property
    def response_cache(self) -> ResponseCache:
        s = self.settings.serving
        if s.cache_url:
            from learnloop.storage.cache.redis_cache import RedisResponseCache

            return RedisResponseCache(s.cache_url)
        return MemoryResponseCache(s.cache_max_entries)

    @cached_property
    def serving(self) -> ServingEngine:
        s = self.settings.serving
        return ServingEngine(
            self.registry,
            self.families,
            self.deployments,
            ledger=self.ledger,
            cache=self.response_cache,
            config=ServingConfig(
                deployment_ttl_s=s.deployment_ttl_s,
                alias_ttl_s=self.settings.api.alias_cache_ttl_s,
                model_cache_mb=s.model_cache_mb,
                ledger_inputs=s.ledger_inputs,
                shadow_workers=s.shadow_workers,
            ),
            metrics=self.serving_metrics,
        )

    @cached_property
    def batch(self) -> BatchService:
        return BatchService(
            self.serving, self.registry, self.datasets, self.settings.home / "batch", self.files
        )

    @cached_property
    def files(self) -> FileRoots:
        """Where files named in requests must lie (``files.import_roots``)."""
        return FileRoots(self.settings.import_roots)

    @cached_property
    def job_handlers(self) -> dict[str, JobHandler]:
        return {
            "train": self.training.run_job,
            "batch_predict": self.batch.run_job,
            "synthesize": self.synthesis.run_job,
            "evaluate": self.evaluator.run_job,
            "tune": self.tuning.run_job,
        }

    @cached_property
    def jobs(self) -> JobService:
        return JobService(
            self.job_store,
            self.audit,
            lambda: set(self.job_handlers),
            default_max_attempts=self.settings.jobs.max_attempts,
        )

    def warm(self) -> None:
        """Load the versions in use (at start-up). The MLflow client is built first: its
        stores migrate with alembic under the process-wide migration lock."""
        _ = self.model_registry.client
        self.serving.warm_all()

    def start_workers(self, threads: int | None = None) -> JobRunner:
        """Start a job runner in this process (idempotent)."""
        if self.runner is None:
            j = self.settings.jobs
            self.runner = JobRunner(
                self.job_store,
                self.job_handlers,
                self.settings.checkpoints_dir,
                RunnerConfig(j.poll_interval_s, j.heartbeat_interval_s, j.heartbeat_timeout_s),
            )
            self.runner.start(j.workers if threads is None else threads)
        return self.runner

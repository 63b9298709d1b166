"""learnloop's one settings tree — the only module that reads the environment.

Every field can be set with an environment variable: prefix ``LEARNLOOP_``, nested fields joined
with ``__`` (e.g. ``LEARNLOOP_DATABASE__URL``, ``LEARNLOOP_JOBS__WORKERS``). A ``.env`` file in
the working directory is read too. All state lives under ``home`` unless a URL points elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class DatabaseSettings(BaseModel):
    """The SQL store: metadata, jobs, audit log, keys, alias history."""

    url: str | None = Field(
        None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db. "
        "Unset: SQLite file `<home>/learnloop.db`.",
    )
    busy_timeout_ms: int = Field(
        30_000, ge=0, description="SQLite: how long a writer waits for the lock before failing."
    )
    pool_size: int = Field(5, ge=1, description="PostgreSQL: connections kept per process.")
    migrate_on_start: bool = Field(
        True, description="Apply pending migrations when `serve`/`worker` start."
    )


class RegistrySettings(BaseModel):
    """The MLflow model registry and tracking store."""

    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI (a server URL or a database URI). "
        "Unset: SQLite store `<home>/mlflow.db`.",
    )
    artifact_root: str | None = Field(
        None, description="Where MLflow writes artifacts. Unset: `<home>/mlartifacts`."
    )
    experiment: str = Field("learnloop", description="MLflow experiment that training runs use.")


class RaySettings(BaseModel):
    """Distributed execution of searches on a Ray cluster."""

    address: str | None = Field(
        None,
        description="Ray cluster address (ray://host:10001, or 'auto'). Set: hyperparameter "
        "searches run on Ray Tune. Unset: they run in the job's process.",
    )


class PolicySettings(BaseModel):
    """The policy engine that closes the loop."""

    enabled: bool = Field(True, description="Tick every model's policy in `learnloop serve`.")
    tick_s: float = Field(5.0, gt=0, description="Seconds between ticks.")


class JobSettings(BaseModel):
    """The durable job runner."""

    workers: int = Field(
        1, ge=0, description="Worker threads started inside `learnloop serve` (0: none)."
    )
    poll_interval_s: float = Field(
        0.5, gt=0, description="How often an idle worker looks for work."
    )
    heartbeat_interval_s: float = Field(
        2.0, gt=0, description="How often a running job's heartbeat is written."
    )
    heartbeat_timeout_s: float = Field(
        30.0, gt=0, description="A running job whose heartbeat is older than this is re-queued."
    )
    max_attempts: int = Field(3, ge=1, description="Attempts before a job whose worker died fails.")


class ApiSettings(BaseModel):
    """The HTTP API."""

    processes: int = Field(
        1,
        ge=1,
        description="HTTP server processes sharing the port; each has its own engine, caches, "
        "ledger writer and job workers (state is shared through the stores).",
    )
    auth_enabled: bool = Field(
        True, description="Require an API key on every /v1 route but health."
    )
    max_body_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="Requests with a larger body get 413."
    )
    alias_cache_ttl_s: float = Field(
        2.0, ge=0, description="How long a resolved alias is cached by the predict route."
    )


class FileSettings(BaseModel):
    """Files that requests may name for the server to read (e.g. a batch job's input)."""

    import_roots: list[Path] = Field(
        default_factory=list,
        max_length=32,
        description="Folders whose files requests may name (after resolving `..` and "
        "symlinks); relative paths in requests start at the first. Empty: `<home>/imports`. "
        "Environment: a JSON list, e.g. LEARNLOOP_FILES__IMPORT_ROOTS='[\"/data/in\"]'.",
    )


class ServingSettings(BaseModel):
    """The serving engine: caches, ledger, shadow traffic."""

    cache_url: str | None = Field(
        None,
        description="Redis URL (redis://host:6379/0) for the response cache shared by all API "
        "processes. Unset: an in-process cache.",
    )
    cache_max_entries: int = Field(100_000, ge=1, description="In-process cache size (items).")
    model_cache_mb: float = Field(
        2048.0, gt=0, description="Loaded versions kept in memory, by on-disk size."
    )
    deployment_ttl_s: float = Field(
        2.0, ge=0, description="How long a deployment read from the database is reused."
    )
    ledger_enabled: bool = Field(True, description="Record every prediction in the ledger.")
    ledger_inputs: bool = Field(True, description="Store inputs with ledger rows (for joins).")
    ledger_flush_ms: float = Field(
        50.0, gt=0, description="Ledger write window: at most this much is lost on a crash."
    )
    ledger_batch_size: int = Field(1000, ge=1, description="Rows per ledger transaction.")
    ledger_queue_size: int = Field(
        50_000, ge=1, description="Buffered rows before requests block (back-pressure)."
    )
    shadow_workers: int = Field(2, ge=1, description="Threads running shadow predictions.")
    gil_switch_interval_ms: float = Field(
        0.5,
        gt=0,
        description="Python's GIL switch interval in the server process (default 5 ms in "
        "Python; shorter cuts the latency of hand-offs between request and model threads).",
    )
    thread_limit: int = Field(
        128, ge=1, description="Concurrent synchronous requests (batched requests wait here)."
    )


class GrpcSettings(BaseModel):
    """The Open Inference Protocol (v2) gRPC server started by `learnloop serve`."""

    enabled: bool = Field(
        True,
        description="Allow `learnloop serve` to start the gRPC server; false keeps it off even "
        "when a port is set.",
    )
    host: str = Field("127.0.0.1", description="Interface the gRPC server binds.")
    port: int = Field(
        8081,
        ge=0,
        le=65535,
        description="Port of the gRPC server. `learnloop serve` starts it only when this is set "
        "(LEARNLOOP_GRPC__PORT) or `--grpc-port` is given; 0 picks a free port.",
    )
    max_workers: int = Field(16, ge=1, description="Threads answering gRPC calls at once.")
    max_message_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="Largest gRPC request or response message."
    )


class FeedbackSettings(BaseModel):
    """The feedback ledger: group commit, PII scrubbing at ingestion, monitors."""

    max_group_events: int = Field(
        50_000, ge=1, description="Most events written in one group-commit transaction."
    )
    queue_size: int = Field(
        10_000, ge=1, description="Requests waiting for the writer before new ones get 503."
    )
    pii_rules: dict[str, Literal["drop", "mask", "hash", "redact", "keep"]] = Field(
        default_factory=lambda: {"text": "redact", "attributes.*": "redact"},
        description="What to do with each field of an event before it is stored (dotted paths, "
        "'*' for one level): drop, mask, hash (HMAC with privacy.secret), redact (replace the "
        "PII found in free text), keep.",
    )
    confidence_psi_alert: float = Field(
        0.2, gt=0, description="PSI of the confidence distribution that raises an alert."
    )
    label_lease_s: float = Field(
        900.0, gt=0, description="How long an assigned labelling task stays with its labeller."
    )


class PrivacySettings(BaseModel):
    """Secrets and budgets of the privacy features."""

    secret: SecretStr | None = Field(
        None,
        description="Salt of PII hashing and erasure tombstones. Unset: a random secret is "
        "created once in <home>/privacy.secret (mode 0600).",
    )
    ledger_rules: dict[str, Literal["drop", "mask", "hash", "redact", "keep"]] = Field(
        default_factory=dict,
        description="PII rules for prediction inputs in the ledger (paths inside the inputs, "
        'e.g. {"email": "hash"}); applied off the request path before rows are stored.',
    )
    dp_epsilon: float = Field(
        1.0, gt=0, description="Default total ε of a dataset's differential-privacy budget."
    )
    dp_delta: float = Field(1e-6, ge=0, lt=1, description="Default total δ of a dataset's budget.")


class LoggingSettings(BaseModel):
    """Logs."""

    level: str = Field("INFO", description="Root log level.")
    json_format: bool = Field(True, description="One JSON object per line (else plain text).")


class Settings(BaseSettings):
    """Root of learnloop's settings."""

    model_config = SettingsConfigDict(
        env_prefix="LEARNLOOP_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    home: Path = Field(
        Path(".learnloop"),
        description="Folder for all local state: database, MLflow store, artifacts, datasets.",
    )
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)  # type: ignore[arg-type]
    registry: RegistrySettings = Field(default_factory=RegistrySettings)  # type: ignore[arg-type]
    jobs: JobSettings = Field(default_factory=JobSettings)  # type: ignore[arg-type]
    api: ApiSettings = Field(default_factory=ApiSettings)  # type: ignore[arg-type]
    files: FileSettings = Field(default_factory=FileSettings)  # type: ignore[arg-type]
    serving: ServingSettings = Field(default_factory=ServingSettings)  # type: ignore[arg-type]
    grpc: GrpcSettings = Field(default_factory=GrpcSettings)  # type: ignore[arg-type]
    policy: PolicySettings = Field(default_factory=PolicySettings)  # type: ignore[arg-type]
    ray: RaySettings = Field(default_factory=RaySettings)  # type: ignore[arg-type]
    feedback: FeedbackSettings = Field(default_factory=FeedbackSettings)  # type: ignore[arg-type]
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)  # type: ignore[arg-type]
    logging: LoggingSettings = Field(default_factory=LoggingSettings)  # type: ignore[arg-type]

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.home / 'learnloop.db'}"

    @property
    def tracking_uri(self) -> str:
        return self.registry.tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def artifact_root(self) -> str:
        return self.registry.artifact_root or (self.home / "mlartifacts").as_uri()

    @property
    def import_roots(self) -> list[Path]:
        """The folders request-named files must lie in (``files.import_roots`` or the default)."""
        roots = self.files.import_roots or [self.home / "imports"]
        return [Path(r).expanduser().resolve() for r in roots]

    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"

    @property
    def checkpoints_dir(self) -> Path:
        return self.home / "checkpoints"

"""MlflowModelRegistry: models, versions, aliases and runs in MLflow.

Embedded by default (a SQLite tracking store and a local artifact folder under the home);
a tracking-server URL works the same. Only :class:`mlflow.MlflowClient` is used (no fluent,
process-global run state), so concurrent jobs in threads are safe. MLflow errors are translated
into learnloop errors here.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from learnloop.core.errors import Conflict, NotFound, StorageError
from learnloop.core.records import ModelRecord, VersionRecord
from learnloop.storage.sql.database import ALEMBIC_LOCK

FAMILY_TAG = "learnloop.family"
ENTRY = Path(__file__).with_name("pyfunc.py")
log = logging.getLogger(__name__)
UPSERT_TRIES = 5
ARTIFACTS_PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"  # mlflow.environment_variables


def _lost_upsert_race(error: BaseException) -> bool:
    """True when ``error`` comes from a unique-key violation somewhere in its cause chain.

    MLflow sets aliases and tags with a read-then-insert (``session.merge``): two writers that
    both read "no row" both insert, and the second fails on the table's unique key. The row
    exists by then, so the same call run again updates it instead."""
    from sqlalchemy.exc import IntegrityError

    seen: set[int] = set()
    cur: BaseException | None = error
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, IntegrityError):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


def _ms(ts: int | None) -> datetime:
    return datetime.fromtimestamp((ts or 0) / 1000, tz=UTC)


class MlflowRun:
    def __init__(self, client: Any, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        existing = self.client.get_run(self.run_id).data.params
        fresh = [Param(k, str(v)[:6000]) for k, v in params.items() if k not in existing]
        if fresh:
            self.client.log_batch(self.run_id, params=fresh)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(datetime.now(UTC).timestamp() * 1000)
        batch = [Metric(k, float(v), now, step or 0) for k, v in metrics.items()]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, v)


class MlflowModelRegistry:
    """:class:`~learnloop.core.registry.ModelRegistry` on MLflow."""

    def __init__(
        self, tracking_uri: str, artifact_root: str, experiment: str, cache_dir: Path
    ) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        self.experiment = experiment
        self.cache_dir = cache_dir
        self._client: Any = None
        self._experiment_id: str | None = None
        self._lock = threading.Lock()
        # MLflow draws a tqdm progress bar on stderr for every artifact download and upload,
        # which lands in the CLI's output and the server's logs. It reads this switch from the
        # environment on each transfer and has no other, so it is set here, once per adapter.
        os.environ[ARTIFACTS_PROGRESS_BAR] = "false"

    # -- plumbing -------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is not None:
            return self._client
        # lock order: the process-wide migration lock, then ours (never the other way round)
        with ALEMBIC_LOCK, self._lock:
            if self._client is None:
                from mlflow import MlflowClient

                # signature inference is not used (families validate their own inputs)
                logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)
                logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
                client = MlflowClient(
                    tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri
                )
                # MLflow creates/migrates its SQL stores (with alembic) on first use
                client.get_experiment_by_name(self.experiment)
                client.search_registered_models(max_results=1)
                self._client = client
            return self._client

    def experiment_id(self) -> str:
        if self._experiment_id is None:
            exp = self.client.get_experiment_by_name(self.experiment)
            if exp is None:
                try:
                    self._experiment_id = self.client.create_experiment(
                        self.experiment, artifact_location=self.artifact_root
                    )
                except Exception:  # created concurrently by another process
                    exp = self.client.get_experiment_by_name(self.experiment)
                    if exp is None:
                        raise
                    self._experiment_id = exp.experiment_id
            else:
                self._experiment_id = exp.experiment_id
        return self._experiment_id

    @contextmanager
    def _translate(self, kind: str, name: str) -> Iterator[None]:
        from mlflow.exceptions import MlflowException

        try:
            yield
        except MlflowException as e:
            code = getattr(e, "error_code", "")
            if code == "RESOURCE_DOES_NOT_EXIST" or "not found" in str(e).lower():
                raise NotFound(kind, name) from e
            if code == "RESOURCE_ALREADY_EXISTS":
                raise Conflict(f"{kind} {name!r} already exists") from e
            if code == "INVALID_PARAMETER_VALUE" and "alias" in str(e).lower():
                raise NotFound(kind, name) from e
            raise StorageError(f"registry error on {kind} {name!r}: {e.message}") from e

    # -- models -----------------------------------------------------------------------------

    def create_model(self, name: str, family: str, description: str = "") -> ModelRecord:
        with self._translate("model", name):
            rm = self.client.create_registered_model(
                name, tags={FAMILY_TAG: family}, description=description or None
            )
        return self._model(rm)

    def get_model(self, name: str) -> ModelRecord:
        with self._translate("model", name):
            return self._model(self.client.get_registered_model(name))

    def list_models(self) -> list[ModelRecord]:
        with self._translate("model", "*"):
            found = self.client.search_registered_models(max_results=1000)
        return [self._model(rm) for rm in found if FAMILY_TAG in (rm.tags or {})]

    def _model(self, rm: Any) -> ModelRecord:
        latest = max((int(v.version) for v in (rm.latest_versions or [])), default=None)
        aliases = rm.aliases if isinstance(rm.aliases, dict) else {}
        return ModelRecord(
            name=rm.name,
            family=(rm.tags or {}).get(FAMILY_TAG, ""),
            description=rm.description or "",
            created_at=_ms(rm.creation_timestamp),
            aliases={str(k): str(v) for k, v in aliases.items()},
            latest_version=str(latest) if latest is not None else None,
        )

    # -- runs -------------------------------------------------------------------------------

    @contextmanager
    def run(
        self, name: str, tags: Mapping[str, str], run_id: str | None = None
    ) -> Iterator[MlflowRun]:
        client = self.client
        if run_id is None:
            run = client.create_run(self.experiment_id(), run_name=name, tags=dict(tags))
            run_id = run.info.run_id
        else:
            client.update_run(run_id, status="RUNNING")
        try:
            yield MlflowRun(client, run_id)
        except BaseException:
            client.set_terminated(run_id, status="FAILED")
            raise
        client.set_terminated(run_id, status="FINISHED")

    def run_metrics(self, run_id: str) -> dict[str, float]:
        """The latest value of every metric the run logged."""
        with self._translate("run", run_id):
            return {k: float(v) for k, v in self.client.get_run(run_id).data.metrics.items()}

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """(step, value) of one metric over the run: a learning curve."""
        with self._translate("run", run_id):
            points = self.client.get_metric_history(run_id, key)
        return sorted((int(p.step), float(p.value)) for p in points)

    # -- versions ---------------------------------------------------------------------------

    def create_version(
        self,
        model: str,
        artifact_dir: Path,
        *,
        family: str,
        run_id: str,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        dataset_id: str | None,
        code_version: str,
    ) -> VersionRecord:
        import mlflow.pyfunc

        from learnloop.storage.registry.pyfunc import FAMILY_FILE

        (artifact_dir / FAMILY_FILE).write_text(json.dumps({"family": family}))
        with tempfile.TemporaryDirectory(prefix="ll-pyfunc-") as tmp:
            package = Path(tmp) / "model"
            family_model = Path(tmp) / "family_model"  # MLflow keeps the folder's own name
            shutil.copytree(artifact_dir, family_model)
            mlflow.pyfunc.save_model(
                path=str(package),
                python_model=str(ENTRY),
                artifacts={"family_model": str(family_model)},
                pip_requirements=[f"learnloop=={code_version.split('+')[0]}"],
            )
            with self._translate("run", run_id):
                self.client.log_artifacts(run_id, str(package), "model")
        tags = {
            FAMILY_TAG: family,
            "learnloop.dataset_id": dataset_id or "",
            "learnloop.code_version": code_version,
            "learnloop.params": json.dumps(dict(params), default=str)[:5000],
            "learnloop.metrics": json.dumps({k: float(v) for k, v in metrics.items()}),
        }
        with self._translate("model", model):
            source = f"{self.client.get_run(run_id).info.artifact_uri}/model"
            mv = self.client.create_model_version(model, source=source, run_id=run_id, tags=tags)
        return self._version(mv)

    def get_version(self, model: str, version: str) -> VersionRecord:
        with self._translate("version", f"{model}/{version}"):
            return self._version(self.client.get_model_version(model, str(version)))

    def list_versions(self, model: str) -> list[VersionRecord]:
        with self._translate("model", model):
            found = self.client.search_model_versions(f"name = '{model}'", max_results=10000)
            aliases = self.get_model(model).aliases  # search results carry no aliases
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(version, []).append(alias)
        records = (
            dataclasses.replace(r, aliases=tuple(sorted(by_version.get(r.version, ()))))
            for r in (self._version(v) for v in found)
        )
        return sorted(records, key=lambda v: int(v.version))

    def _version(self, mv: Any) -> VersionRecord:
        tags = mv.tags or {}
        return VersionRecord(
            model=mv.name,
            version=str(mv.version),
            family=tags.get(FAMILY_TAG, ""),
            created_at=_ms(mv.creation_timestamp),
            run_id=mv.run_id,
            params=json.loads(tags.get("learnloop.params", "{}")),
            metrics=json.loads(tags.get("learnloop.metrics", "{}")),
            dataset_id=tags.get("learnloop.dataset_id") or None,
            code_version=tags.get("learnloop.code_version", ""),
            aliases=tuple(sorted(mv.aliases or ())),
            source=mv.source or "",
            tags={k: v for k, v in tags.items() if k.startswith("learnloop.")},
        )

    def set_version_tag(self, model: str, version: str, key: str, value: str) -> None:
        self._upsert(
            f"{model}/{version}", self.client.set_model_version_tag, model, str(version), key, value
        )

    def _upsert(self, name: str, write: Any, *args: Any) -> None:
        """Run an MLflow set-call, again if a concurrent writer inserted the same row first."""
        for attempt in range(UPSERT_TRIES):
            try:
                with self._translate("version", name):
                    write(*args)
                return
            except StorageError as e:
                if attempt == UPSERT_TRIES - 1 or not _lost_upsert_race(e):
                    raise
                log.info("registry write on %s lost a race (try %d); again", name, attempt + 1)

    # -- aliases ----------------------------------------------------------------------------

    def set_alias(self, model: str, alias: str, version: str) -> None:
        self._upsert(
            f"{model}/{version}", self.client.set_registered_model_alias, model, alias, str(version)
        )

    def delete_alias(self, model: str, alias: str) -> None:
        with self._translate("alias", f"{model}@{alias}"):
            self.client.delete_registered_model_alias(model, alias)

    def resolve_alias(self, model: str, alias: str) -> str:
        with self._translate("alias", f"{model}@{alias}"):
            return str(self.client.get_model_version_by_alias(model, alias).version)

    # -- artifacts --------------------------------------------------------------------------

    def artifact_path(self, model: str, version: str) -> Path:
        target = self.cache_dir / model / str(version)
        if (target / "family_model").is_dir():
            return target / "family_model"
        import mlflow.artifacts

        record = self.get_version(model, version)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
        try:
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"{record.source}/artifacts/family_model",
                dst_path=str(tmp),
                tracking_uri=self.tracking_uri,
            )
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target / "family_model"

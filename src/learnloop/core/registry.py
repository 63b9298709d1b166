"""The model registry service: models, versions, aliases with history, rollback.

The registry backend (MLflow by default) holds models, versions and the current alias
pointers; learnloop's own database keeps the **history** of every alias move (who, when, from,
to, why), which MLflow does not. That history answers "which version was champion at time T"
and drives :meth:`RegistryService.rollback`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from learnloop.core.errors import Conflict, InvalidInput, Issue, NotFound
from learnloop.core.records import RETRAIN_TAG, AliasEvent, ModelRecord, VersionRecord
from learnloop.core.stores import AliasHistory, AuditLog

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


class TrainingRun(Protocol):
    """One tracked run (an MLflow run by default). Methods are thread-safe."""

    run_id: str

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None: ...

    def set_tags(self, tags: Mapping[str, str]) -> None: ...


class ModelRegistry(Protocol):
    """Backend of models, versions, alias pointers and tracked runs.

    Lookups of missing things raise ``NotFound``; ``create_model`` on an existing name raises
    ``Conflict``. Implementations translate their own errors at this boundary.
    """

    def create_model(self, name: str, family: str, description: str = "") -> ModelRecord: ...

    def get_model(self, name: str) -> ModelRecord: ...

    def list_models(self) -> list[ModelRecord]: ...

    def run(
        self, name: str, tags: Mapping[str, str], run_id: str | None = None
    ) -> AbstractContextManager[TrainingRun]:
        """Start (or, with ``run_id``, continue) a run; it ends FINISHED, or FAILED on error."""
        ...

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
        """Log ``artifact_dir`` (a family's saved model) as an MLflow-pyfunc model of the run
        and register it as the next version of ``model``."""
        ...

    def get_version(self, model: str, version: str) -> VersionRecord: ...

    def list_versions(self, model: str) -> list[VersionRecord]: ...

    def set_version_tag(self, model: str, version: str, key: str, value: str) -> None: ...

    def set_alias(self, model: str, alias: str, version: str) -> None: ...

    def delete_alias(self, model: str, alias: str) -> None: ...

    def resolve_alias(self, model: str, alias: str) -> str:
        """The version an alias points to; ``NotFound`` if unset."""
        ...

    def artifact_path(self, model: str, version: str) -> Path:
        """A local folder with the family's saved model (downloaded and cached if remote)."""
        ...


def check_name(kind: str, value: str, pattern: re.Pattern[str] = NAME_RE) -> str:
    if not pattern.match(value):
        raise InvalidInput(
            f"invalid {kind} name",
            [Issue(kind, f"{value!r} must match {pattern.pattern}")],
        )
    return value


class RegistryService:
    """Registry operations with audit and alias history."""

    def __init__(self, registry: ModelRegistry, history: AliasHistory, audit: AuditLog) -> None:
        self.registry = registry
        self.history = history
        self.audit = audit
        self._listeners: list[Callable[[str, str], None]] = []

    def on_alias_change(self, callback: Callable[[str, str], None]) -> None:
        """Call ``callback(model, alias)`` after every alias move made here."""
        self._listeners.append(callback)

    # -- models & versions ------------------------------------------------------------------

    def ensure_model(
        self, name: str, family: str, *, actor: str, description: str = ""
    ) -> ModelRecord:
        check_name("model", name)
        try:
            existing = self.registry.get_model(name)
        except NotFound:
            try:
                record = self.registry.create_model(name, family, description)
            except Conflict:
                # Another writer (a second job, a second worker) created it between our read
                # and our create: theirs is the model, checked for its family below.
                existing = self.registry.get_model(name)
            else:
                self.audit.append(actor, "model.create", f"model:{name}", {"family": family})
                return record
        if existing.family != family:
            raise Conflict(f"model {name!r} is bound to family {existing.family!r}, not {family!r}")
        return existing

    def get_model(self, name: str) -> ModelRecord:
        return self.registry.get_model(name)

    def list_models(self) -> list[ModelRecord]:
        return self.registry.list_models()

    def get_version(self, model: str, version: str) -> VersionRecord:
        return self.registry.get_version(model, version)

    def list_versions(self, model: str) -> list[VersionRecord]:
        self.registry.get_model(model)
        return self.registry.list_versions(model)

    def register(self, model: str, artifact_dir: Path, *, actor: str, **meta: Any) -> VersionRecord:
        record = self.registry.create_version(model, artifact_dir, **meta)
        self.audit.append(
            actor,
            "version.create",
            f"model:{model}",
            {"version": record.version, "run_id": record.run_id, "dataset_id": record.dataset_id},
        )
        return record

    def trained_on(self, dataset_ids: Collection[str]) -> list[VersionRecord]:
        """Every version (of every model) whose training dataset is one of ``dataset_ids``."""
        wanted = set(dataset_ids)
        if not wanted:
            return []
        return [
            v
            for m in self.registry.list_models()
            for v in self.registry.list_versions(m.name)
            if v.dataset_id in wanted
        ]

    def flag_retrain(self, model: str, version: str, reason: str, *, actor: str) -> None:
        """Mark a version "retrain required" (a registry tag) and audit it."""
        self.registry.set_version_tag(model, version, RETRAIN_TAG, reason)
        self.audit.append(
            actor, "version.retrain_required", f"model:{model}", {"version": version, "why": reason}
        )

    # -- aliases ------------------------------------------------------------------------------

    def current(self, model: str, alias: str) -> str | None:
        try:
            return self.registry.resolve_alias(model, alias)
        except NotFound:
            self.registry.get_model(model)  # a missing model is still an error
            return None

    def resolve(self, model: str, alias: str) -> str:
        version = self.current(model, alias)
        if version is None:
            raise NotFound("alias", f"{model}@{alias}")
        return version

    def set_alias(
        self,
        model: str,
        alias: str,
        version: str,
        *,
        actor: str,
        reason: str = "",
        action: str = "set",
    ) -> AliasEvent:
        check_name("alias", alias, ALIAS_RE)
        self.registry.get_version(model, version)  # NotFound for a missing version
        before = self.current(model, alias)
        self.registry.set_alias(model, alias, version)
        event = self.history.record(model, alias, action, before, version, actor, reason)
        self.audit.append(
            actor,
            f"alias.{action}",
            f"model:{model}",
            {"alias": alias, "from": before, "to": version, "reason": reason},
        )
        self._notify(model, alias)
        return event

    def delete_alias(self, model: str, alias: str, *, actor: str, reason: str = "") -> AliasEvent:
        before = self.current(model, alias)
        if before is None:
            raise NotFound("alias", f"{model}@{alias}")
        self.registry.delete_alias(model, alias)
        event = self.history.record(model, alias, "delete", before, None, actor, reason)
        self.audit.append(actor, "alias.delete", f"model:{model}", {"alias": alias, "from": before})
        self._notify(model, alias)
        return event

    def rollback(self, model: str, alias: str, *, actor: str, reason: str = "") -> AliasEvent:
        """Point ``alias`` back at the version it had before its current one.

        Repeated rollbacks walk further back (rollbacks pop, sets push), so
        set 1 → set 2 → set 3 → rollback → 2 → rollback → 1."""
        stack = self._pointer_stack(model, alias)
        if len(stack) < 2:
            raise Conflict(f"alias {model}@{alias} has no earlier version to roll back to")
        return self.set_alias(
            model, alias, stack[-2], actor=actor, reason=reason or "rollback", action="rollback"
        )

    def alias_history(self, model: str, alias: str | None = None) -> list[AliasEvent]:
        self.registry.get_model(model)
        return self.history.history(model, alias)

    def version_at(self, model: str, alias: str, at: datetime) -> str | None:
        return self.history.version_at(model, alias, at)

    def _pointer_stack(self, model: str, alias: str) -> list[str]:
        stack: list[str] = []
        for event in self.history.history(model, alias):
            if event.action == "rollback":
                if stack:
                    stack.pop()
                if not stack or stack[-1] != event.to_version:
                    stack.append(event.to_version or "")
            elif event.action == "delete":
                stack.clear()
            elif event.to_version is not None:
                stack.append(event.to_version)
        return [v for v in stack if v]

    def _notify(self, model: str, alias: str) -> None:
        for callback in self._listeners:
            callback(model, alias)

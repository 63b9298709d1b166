"""The model registry service: models, versions, aliases with history, rollback.

The registry backend (MLflow by default) holds models, versions and the current alias
pointers; learnloop's own database keeps the **history** of every alias move (who, when, from,
to, why), which MLflow does not. That history answers "which version was champion at time T"
and drives :meth:`RegistryService.rollback`.

Alias moves are serialised per (model, alias) across threads, processes and hosts by the
history store's lock (see :meth:`RegistryService._move` for the order of writes), so each
alias's history is one chain: every event starts where the previous one left the alias.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from learnloop.core.errors import Conflict, InvalidInput, Issue, NotFound
from learnloop.core.identifiers import MODEL_RE, check_alias, check_version
from learnloop.core.records import RETRAIN_TAG, AliasEvent, ModelRecord, VersionRecord
from learnloop.core.stores import AliasHistory, AliasMove, AuditLog

NAME_RE = MODEL_RE  # the shapes live in core/identifiers.py (shared with every transport)


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
        self._delete_guards: list[Callable[[str, str], str | None]] = []

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
        return self.registry.get_version(model, check_version(version))

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
        """Point ``alias`` at ``version``; returns the event recorded.

        Setting the version the alias already has is a **no-op**: nothing is written (no
        history event, no audit entry, no change notification) and the alias's latest event is
        returned unchanged — its ``to_version`` is ``version``, and its ``id`` tells a client
        that nothing new happened."""
        check_alias(alias)
        self.registry.get_version(model, check_version(version))  # NotFound for a missing one

        def plan(stack: list[str], actual: str | None) -> AliasMove | None:
            if actual == version:
                return None
            return AliasMove(action, version, actor, reason)

        return self._move(model, alias, plan)

    def delete_alias(self, model: str, alias: str, *, actor: str, reason: str = "") -> AliasEvent:
        """Remove ``alias``. ``NotFound`` if it is unset; ``Conflict`` (naming the user) if a
        delete guard refuses — e.g. a deployment still serves it (see :meth:`add_delete_guard`).

        Guards run before the alias's lock is taken (they read other stores): a deployment
        written between the guard and the delete is not seen."""
        if self.current(model, alias) is None:
            raise NotFound("alias", f"{model}@{alias}")
        for guard in self._delete_guards:
            refusal = guard(model, alias)
            if refusal:
                raise Conflict(refusal)

        def plan(stack: list[str], actual: str | None) -> AliasMove | None:
            if actual is None:
                raise NotFound("alias", f"{model}@{alias}")
            return AliasMove("delete", None, actor, reason)

        return self._move(model, alias, plan)

    def rollback(self, model: str, alias: str, *, actor: str, reason: str = "") -> AliasEvent:
        """Point ``alias`` back at the version it had before its current one.

        The history is read as a **stack of pointers**: a set pushes its version (a no-op set
        in an old history pushes nothing), a rollback pops (so repeated rollbacks walk further
        back, and a rollback of a rollback is not a redo: set 1 → set 2 → set 3 → rollback → 2
        → rollback → 1), and a delete empties the stack (a re-created alias starts a new one).
        ``Conflict`` when there is nothing to roll back to: fewer than two versions on the
        stack, or the alias is unset."""

        def plan(stack: list[str], actual: str | None) -> AliasMove | None:
            if actual is None or len(stack) < 2 or stack[-2] == actual:
                raise Conflict(
                    f"alias {model}@{alias} has no earlier version to roll back to"
                    + ("" if actual is None else f" (it points to version {actual})")
                )
            return AliasMove("rollback", stack[-2], actor, reason or "rollback")

        return self._move(model, alias, plan)

    def alias_history(self, model: str, alias: str | None = None) -> list[AliasEvent]:
        self.registry.get_model(model)
        return self.history.history(model, alias)

    def version_at(self, model: str, alias: str, at: datetime) -> str | None:
        return self.history.version_at(model, alias, at)

    def add_delete_guard(self, guard: Callable[[str, str], str | None]) -> None:
        """Ask ``guard(model, alias)`` before every alias delete; a non-empty answer refuses
        the delete with ``Conflict`` carrying it as the message (say who uses the alias).
        Guards must not fail otherwise."""
        self._delete_guards.append(guard)

    def _move(
        self,
        model: str,
        alias: str,
        plan: Callable[[list[str], str | None], AliasMove | None],
    ) -> AliasEvent:
        """Run one alias move serialised with every other move of ``model``/``alias``.

        Order of writes, all inside the history store's transaction that holds the alias's
        lock: read the chain; read the registry's pointer (MLflow); if the two disagree (an
        alias moved in MLflow directly, or a move whose history commit failed after MLflow
        took it) append a ``sync`` event to the registry's version first, so the chain stays
        true and the divergence is on record, not silent; ``plan(stack, actual)`` decides the
        move (``None`` = no-op); write it to the registry; append its event; commit. If the
        registry write fails, nothing is appended. Audit and change notifications follow the
        commit. Returns the move's event, or for a no-op the chain's latest event."""
        moved: list[AliasMove] = []
        latest: list[AliasEvent] = []

        def decide(chain: list[AliasEvent]) -> list[AliasMove]:
            latest[:] = chain[-1:]
            moves: list[AliasMove] = []
            recorded = chain[-1].to_version if chain else None
            actual = self.current(model, alias)
            stack = _pointer_stack(chain)
            if actual != recorded:
                moves.append(AliasMove("sync", actual, "registry", SYNC_REASON))
                _push(stack, "sync", actual)
            move = plan(stack, actual)
            if move is not None:
                if move.to_version is None:
                    self.registry.delete_alias(model, alias)
                else:
                    self.registry.set_alias(model, alias, move.to_version)
                moves.append(move)
                moved.append(move)
            return moves

        appended = self.history.move(model, alias, decide)
        for event in appended:  # a sync found on the way is audited too
            detail: dict[str, str | None] = {"alias": alias, "from": event.from_version}
            if event.action != "delete":
                detail["to"] = event.to_version
            detail["reason"] = event.reason
            self.audit.append(event.actor, f"alias.{event.action}", f"model:{model}", detail)
        if moved:
            self._notify(model, alias)
            return appended[-1]
        head = appended or latest  # a no-op: the chain's head (a sync event just added, if any)
        if not head:  # unreachable: a no-op set leaves the alias set, hence recorded
            raise NotFound("alias", f"{model}@{alias}")
        return head[-1]

    def _notify(self, model: str, alias: str) -> None:
        for callback in self._listeners:
            callback(model, alias)


SYNC_REASON = "the registry's pointer differed from the history (moved outside learnloop)"


def _pointer_stack(chain: list[AliasEvent]) -> list[str]:
    """The versions an alias pointed to that rollback can return to, oldest first (see
    :meth:`RegistryService.rollback`)."""
    stack: list[str] = []
    for event in chain:
        _push(stack, event.action, event.to_version)
    return stack


def _push(stack: list[str], action: str, to_version: str | None) -> None:
    if to_version is None:  # delete (or found unset): the alias starts over
        stack.clear()
        return
    if action == "rollback" and stack:
        stack.pop()
    if not stack or stack[-1] != to_version:
        stack.append(to_version)

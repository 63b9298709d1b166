"""DeploymentService: create, change, promote and roll back deployments, with audit."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Protocol

from learnloop.core.deployments import (
    IMPLICIT,
    Arm,
    Deployment,
    DeploymentSpec,
    promote,
    require_arm_targets,
)
from learnloop.core.errors import Conflict, NotFound
from learnloop.core.registry import RegistryService
from learnloop.core.stores import AuditLog


class DeploymentStore(Protocol):
    def current(self, model: str) -> Deployment | None: ...

    def history(self, model: str) -> list[Deployment]: ...

    def add(
        self, model: str, spec: DeploymentSpec, actor: str, reason: str, expected: int | None
    ) -> Deployment: ...


class DeploymentService:
    def __init__(self, store: DeploymentStore, registry: RegistryService, audit: AuditLog) -> None:
        self.store = store
        self.registry = registry
        self.audit = audit
        self._listeners: list[Callable[[str, DeploymentSpec], None]] = []

    def on_change(self, callback: Callable[[str, DeploymentSpec], None]) -> None:
        """``callback(model, new_spec)`` runs before a change is stored (to warm versions up)
        and must not fail; it also runs after, with the stored spec."""
        self._listeners.append(callback)

    def get(self, model: str) -> Deployment:
        """The deployment in force; the implicit one (revision 0) when none was stored."""
        found = self.store.current(model)
        if found is not None:
            return found
        self.registry.get_model(model)  # NotFound for an unknown model
        return Deployment(
            model=model, revision=0, spec=IMPLICIT, actor="implicit", reason="default"
        )

    def history(self, model: str) -> list[Deployment]:
        self.registry.get_model(model)
        return self.store.history(model)

    def apply(
        self,
        model: str,
        spec: DeploymentSpec,
        *,
        actor: str,
        reason: str = "",
        expected_revision: int | None = None,
        action: str = "deployment.apply",
    ) -> Deployment:
        """Validate arms against the registry, warm their versions, store a new revision.

        A spec without a salt keeps the current deployment's (or gets a new one)."""
        self.registry.get_model(model)
        if spec.salt is None:
            current = self.store.current(model)
            salt = current.spec.salt if current is not None else secrets.token_hex(4)
            spec = spec.model_copy(update={"salt": salt})
        require_arm_targets(spec, lambda arm: self._exists(model, arm))
        for callback in self._listeners:
            callback(model, spec)
        deployment = self.store.add(model, spec, actor, reason, expected_revision)
        self.audit.append(
            actor,
            action,
            f"model:{model}",
            {"revision": deployment.revision, "mode": spec.mode, "reason": reason},
        )
        for callback in self._listeners:
            callback(model, spec)
        return deployment

    def promote(self, model: str, *, actor: str, reason: str = "") -> Deployment:
        current = self.get(model)
        spec, note = promote(current.spec)
        return self.apply(
            model,
            spec,
            actor=actor,
            reason=reason or note,
            expected_revision=current.revision,
            action="deployment.promote",
        )

    def rollback(self, model: str, *, actor: str, reason: str = "") -> Deployment:
        """Store the previous revision's spec again as a new revision."""
        history = self.history(model)
        if len(history) < 2:
            raise Conflict(f"deployment of {model!r} has no earlier revision to roll back to")
        previous = history[-2]
        return self.apply(
            model,
            previous.spec,
            actor=actor,
            reason=reason or f"rollback to revision {previous.revision}",
            expected_revision=history[-1].revision,
            action="deployment.rollback",
        )

    def alias_in_use(self, model: str, alias: str) -> str | None:
        """Why ``alias`` must not be deleted (the deployment serving it), or ``None``."""
        deployment = self.get(model)
        users = [f"arm {a.name!r}" for a in deployment.spec.arms if a.alias == alias]
        users += [
            f"fallback {r!r}" for r in deployment.spec.fallback.chain if r == f"alias:{alias}"
        ]
        if not users:
            return None
        implicit = ", implicit" if deployment.revision == 0 else ""
        return (
            f"alias {model}@{alias} is served by the deployment of {model!r} (revision "
            f"{deployment.revision}{implicit}: {', '.join(users)}); change the deployment first"
        )

    def _exists(self, model: str, arm: Arm) -> bool:
        try:
            if arm.alias is not None:
                self.registry.resolve(model, arm.alias)
            else:
                self.registry.get_version(model, str(arm.version))
        except NotFound:
            return False
        return True

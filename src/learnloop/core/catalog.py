"""The catalog of model families: built-ins plus the ``learnloop.families`` entry point.

Families are imported on first use, so a family whose extra is missing only fails when asked
for, with the import error's message.
"""

from __future__ import annotations

import importlib
import logging
import threading
from importlib.metadata import entry_points
from typing import Any, ClassVar

from learnloop.core.errors import MissingDependency, NotFound
from learnloop.core.family import ModelFamily

BUILTIN_FAMILIES: dict[str, str] = {
    "tabular": "learnloop.families.tabular:TabularFamily",
    "knowledge_tracing": "learnloop.families.knowledge_tracing:KnowledgeTracingFamily",
}
ENTRY_POINT_GROUP = "learnloop.families"
log = logging.getLogger("learnloop")

FamilyClass = type[ModelFamily[Any, Any, Any]]


class FamilyCatalog:
    """Name → family class. ``register`` adds one at run time (tests, notebooks)."""

    _default: ClassVar[FamilyCatalog | None] = None

    def __init__(self, targets: dict[str, str] | None = None, *, discover: bool = True) -> None:
        self._targets = dict(BUILTIN_FAMILIES if targets is None else targets)
        if discover:
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                self._targets.setdefault(ep.name, ep.value)
        self._loaded: dict[str, FamilyClass] = {}
        self._lock = threading.Lock()

    @classmethod
    def default(cls) -> FamilyCatalog:
        if cls._default is None:
            cls._default = cls()
        return cls._default

    def names(self) -> list[str]:
        return sorted(set(self._targets) | set(self._loaded))

    def register(self, family: FamilyClass) -> None:
        with self._lock:
            self._loaded[family.name] = family

    def api_modules(self) -> list[Any]:
        """The ``api`` modules of the families that have one (``<family package>.api`` with a
        ``router`` and optionally ``install(container)``); a family whose extra is missing is
        skipped with a warning."""
        modules = []
        for name, target in sorted(self._targets.items()):
            package = target.partition(":")[0]
            api_name = f"{package}.api"
            try:
                modules.append(importlib.import_module(api_name))
            except ModuleNotFoundError as e:
                if e.name in (api_name, package):
                    continue
                log.warning("family %r: routes not mounted (%s)", name, e)
        return modules

    def get(self, name: str) -> FamilyClass:
        with self._lock:
            if name in self._loaded:
                return self._loaded[name]
        target = self._targets.get(name)
        if target is None:
            raise NotFound("family", name)
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if not e.name or e.name.split(".")[0] == "learnloop":
                raise
            raise MissingDependency(e.name, name) from e
        family: FamilyClass = getattr(module, attr)
        with self._lock:
            self._loaded[name] = family
        return family

"""Prediction through an alias (``champion`` by default) or an explicit version.

Loaded versions stay in memory (an LRU of ``max_loaded`` models); resolved aliases are cached
for ``alias_ttl_s`` seconds and dropped at once when this process moves an alias, so another
process's move is seen within the TTL. The full serving engine (deployments, ledger, batching)
builds on this service.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from learnloop.core.catalog import FamilyCatalog
from learnloop.core.family import AnyFamily
from learnloop.core.registry import RegistryService


@dataclass(frozen=True)
class Prediction:
    model: str
    version: str
    alias: str | None
    outputs: list[dict[str, Any]]
    latency_ms: float


class PredictionService:
    def __init__(
        self,
        registry: RegistryService,
        families: FamilyCatalog,
        *,
        alias_ttl_s: float = 2.0,
        max_loaded: int = 8,
    ) -> None:
        self.registry = registry
        self.families = families
        self.alias_ttl_s = alias_ttl_s
        self.max_loaded = max_loaded
        self._aliases: dict[tuple[str, str], tuple[float, str]] = {}
        self._models: OrderedDict[tuple[str, str], AnyFamily] = OrderedDict()
        self._lock = threading.Lock()
        self._load_locks: dict[tuple[str, str], threading.Lock] = {}
        registry.on_alias_change(self.forget_alias)

    def forget_alias(self, model: str, alias: str) -> None:
        with self._lock:
            self._aliases.pop((model, alias), None)

    def resolve(self, model: str, alias: str) -> str:
        key = (model, alias)
        now = time.monotonic()
        with self._lock:
            hit = self._aliases.get(key)
        if hit and now - hit[0] < self.alias_ttl_s:
            return hit[1]
        version = self.registry.resolve(model, alias)
        with self._lock:
            self._aliases[key] = (now, version)
        return version

    def loaded(self, model: str, version: str) -> AnyFamily:
        key = (model, version)
        with self._lock:
            found = self._models.get(key)
            if found is not None:
                self._models.move_to_end(key)
                return found
            load_lock = self._load_locks.setdefault(key, threading.Lock())
        with load_lock:  # one load per version, however many requests wait for it
            with self._lock:
                found = self._models.get(key)
            if found is not None:
                return found
            record = self.registry.get_version(model, version)
            path = self.registry.registry.artifact_path(model, version)
            instance = self.families.get(record.family).load(path)
            with self._lock:
                self._models[key] = instance
                while len(self._models) > self.max_loaded:
                    self._models.popitem(last=False)
            return instance

    def predict(
        self,
        model: str,
        inputs: Sequence[Mapping[str, Any]],
        *,
        alias: str | None = "champion",
        version: str | None = None,
    ) -> Prediction:
        started = time.perf_counter()
        if version is None:
            alias = alias or "champion"
            version = self.resolve(model, alias)
        else:
            alias = None
        instance = self.loaded(model, version)
        items = instance.validate_inputs(inputs)
        outputs = [o.model_dump() for o in instance.predict(items)]
        return Prediction(
            model=model,
            version=version,
            alias=alias,
            outputs=outputs,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

"""The serving engine: deployment routing, fallback, caches, batching, shadow and the ledger.

One call, :meth:`ServingEngine.predict`, serves a request of one or more items:

1. the model's deployment (cached; dropped at once when it changes here, within
   ``deployment_ttl_s`` when another process changes it) picks an arm — sticky per subject id;
2. the arm's alias resolves to a version (cached the same way; moves made in this process warm
   the new version *before* the cut-over, so no request waits for a load or fails);
3. each item is looked up in the response cache (when the deployment enables it);
4. misses go through the version's adaptive batcher, under its circuit breaker and time limit;
   an error, a timeout, an open breaker or an out-of-range input moves to the next entry of the
   fallback chain, and ``served_by`` says who answered and why;
5. in ``shadow`` mode a share of requests is mirrored to the shadow arm on a background pool
   (never delaying the response; dropped and counted when the pool is busy);
6. every output gets a UUIDv7 ``prediction_id`` and a ledger row (written off the request path).

Input errors (``InvalidInput``) are the caller's and are raised, never fallen back on.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from learnloop.core.batching import AdaptiveBatcher
from learnloop.core.cache import MemoryResponseCache, ResponseCache, cache_key, input_hash
from learnloop.core.catalog import FamilyCatalog
from learnloop.core.deployments import MAX_TIMEOUT_MS, Arm, DeploymentSpec, FallbackSpec
from learnloop.core.errors import InvalidInput, LearnloopError, NotFound
from learnloop.core.family import AnyFamily
from learnloop.core.identifiers import check_alias, check_version
from learnloop.core.ids import new_id
from learnloop.core.ledger import LedgerWriter, PredictionRecord
from learnloop.core.registry import RegistryService
from learnloop.core.rollout import DeploymentService

log = logging.getLogger("learnloop.serving")
T = TypeVar("T")


class ServingMetrics(Protocol):
    """Where the engine reports; the API implements it with Prometheus."""

    def request(
        self, model: str, version: str, arm: str, items: int, seconds: float, cache_hits: int
    ) -> None: ...

    def fallback(self, model: str, version: str, reason: str) -> None: ...

    def batch(self, model: str, version: str, size: int, queue_seconds: float) -> None: ...

    def shadow_dropped(self, model: str) -> None: ...


@dataclass(frozen=True)
class ServingConfig:
    deployment_ttl_s: float = 2.0
    alias_ttl_s: float = 2.0
    model_cache_mb: float = 2048.0
    ledger_inputs: bool = True
    shadow_workers: int = 2
    shadow_queue: int = 256


@dataclass(frozen=True)
class ServedPrediction:
    model: str
    version: str
    arm: str
    alias: str | None
    outputs: list[dict[str, Any]]
    prediction_ids: list[str]
    served_by: dict[str, Any]
    cache_hits: int
    latency_ms: float
    deployment_revision: int


class BreakerOpen(LearnloopError):
    """The version's circuit breaker is open."""


class OutOfRange(LearnloopError):
    """Inputs far outside the training data."""


class CircuitBreaker:
    """Opens after ``failures`` consecutive errors; after ``reset_s`` lets one call try."""

    def __init__(self) -> None:
        self.consecutive = 0
        self.opened_at: float | None = None
        self._lock = threading.Lock()

    def check(self, spec: FallbackSpec) -> None:
        with self._lock:
            if self.opened_at is None:
                return
            if time.monotonic() - self.opened_at >= spec.breaker_reset_s:
                self.opened_at = time.monotonic()  # half-open: this call tries, others wait
                return
            raise BreakerOpen("circuit breaker open")

    def record(self, ok: bool, spec: FallbackSpec) -> None:
        with self._lock:
            if ok:
                self.consecutive, self.opened_at = 0, None
            else:
                self.consecutive += 1
                if self.consecutive >= spec.breaker_failures:
                    self.opened_at = time.monotonic()


@dataclass
class LoadedVersion:
    model: str
    version: str
    instance: AnyFamily
    size_bytes: int
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    batchers: dict[tuple[int, float], AdaptiveBatcher] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def batcher(self, size: int, wait_ms: float, metrics: ServingMetrics | None) -> AdaptiveBatcher:
        key = (size, wait_ms)
        with self.lock:
            found = self.batchers.get(key)
            if found is None:
                observe = None
                if metrics is not None:
                    m = metrics

                    def observe(n: int, q: float) -> None:
                        m.batch(self.model, self.version, n, q)

                found = AdaptiveBatcher(
                    lambda items: self.instance.predict(items),
                    max_batch_size=size,
                    max_wait_ms=wait_ms,
                    observe=observe,
                    name=f"batch-{self.model}-{self.version}",
                )
                self.batchers[key] = found
            return found

    def close(self) -> None:
        for b in self.batchers.values():
            b.close()


class ModelCache:
    """Loaded versions, least recently used evicted beyond ``max_bytes`` (on-disk size)."""

    def __init__(self, registry: RegistryService, families: FamilyCatalog, max_bytes: int):
        self.registry = registry
        self.families = families
        self.max_bytes = max_bytes
        self._loaded: OrderedDict[tuple[str, str], LoadedVersion] = OrderedDict()
        self._lock = threading.Lock()
        self._load_locks: dict[tuple[str, str], threading.Lock] = {}
        # called with each newly loaded version, before it serves (families attach runtime
        # services here, e.g. where learner histories are stored)
        self.on_load: list[Callable[[LoadedVersion], None]] = []

    def get(self, model: str, version: str) -> LoadedVersion:
        key = (model, version)
        with self._lock:
            found = self._loaded.get(key)
            if found is not None:
                self._loaded.move_to_end(key)
                return found
            load_lock = self._load_locks.setdefault(key, threading.Lock())
        with load_lock:  # one load per version however many requests wait for it
            with self._lock:
                found = self._loaded.get(key)
            if found is not None:
                return found
            record = self.registry.get_version(model, version)
            path = self.registry.registry.artifact_path(model, version)
            instance = self.families.get(record.family).load(path)
            loaded = LoadedVersion(model, version, instance, _folder_size(path))
            for hook in self.on_load:
                hook(loaded)
            evicted = []
            with self._lock:
                self._loaded[key] = loaded
                while len(self._loaded) > 1 and self._bytes() > self.max_bytes:
                    evicted.append(self._loaded.popitem(last=False)[1])
            for old in evicted:
                old.close()
            return loaded

    def loaded(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._loaded)

    def has(self, model: str, version: str) -> bool:
        """Whether the version is loaded now."""
        with self._lock:
            return (model, version) in self._loaded

    def close(self) -> None:
        with self._lock:
            items = list(self._loaded.values())
            self._loaded.clear()
        for item in items:
            item.close()

    def _bytes(self) -> int:
        return sum(v.size_bytes for v in self._loaded.values())


def _folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class ServingEngine:
    def __init__(
        self,
        registry: RegistryService,
        families: FamilyCatalog,
        deployments: DeploymentService,
        *,
        ledger: LedgerWriter | None = None,
        cache: ResponseCache | None = None,
        config: ServingConfig = ServingConfig(),
        metrics: ServingMetrics | None = None,
    ) -> None:
        self.registry = registry
        self.deployments = deployments
        self.ledger = ledger
        self.cache = cache or MemoryResponseCache()
        self.config = config
        self.metrics = metrics
        self.models = ModelCache(registry, families, int(config.model_cache_mb * 2**20))
        self._deployments: dict[str, tuple[float, tuple[int, DeploymentSpec]]] = {}
        self._refreshing: dict[Any, threading.Lock] = {}
        self._aliases: dict[tuple[str, str], tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._shadow_pool = ThreadPoolExecutor(config.shadow_workers, "ll-shadow")
        self._shadow_slots = threading.BoundedSemaphore(config.shadow_queue)
        registry.on_alias_change(self._alias_moved)
        deployments.on_change(self._deployment_changed)

    # -- change notifications (warm first, then cut over) --------------------------------------

    def _alias_moved(self, model: str, alias: str) -> None:
        version = self.registry.current(model, alias)
        if version is not None:
            self._warm(model, version)
            with self._lock:
                self._aliases[(model, alias)] = (time.monotonic(), version)
        else:
            with self._lock:
                self._aliases.pop((model, alias), None)

    def _deployment_changed(self, model: str, spec: DeploymentSpec) -> None:
        for arm in spec.arms:
            try:
                self._warm(model, self._version_of(model, arm))
            except LearnloopError:
                log.warning("could not warm arm", extra={"model": model, "arm": arm.name})
        with self._lock:
            self._deployments.pop(model, None)
        self.cache.bump(model)

    def _warm(self, model: str, version: str) -> None:
        self.models.get(model, version)

    def warm_all(self) -> None:
        """Resolve and load every model's serving arms (at start-up); failures are logged."""
        try:
            models = [m.name for m in self.registry.list_models()]
        except Exception:
            log.exception("warm-up could not list models")
            return
        for model in models:
            try:
                _, spec = self.deployment(model)
                for arm in spec.arms:
                    self._warm(model, self._version_of(model, arm))
            except LearnloopError:
                continue  # e.g. no champion yet
            except Exception:
                log.exception("warm-up failed", extra={"model": model})

    # -- resolution ----------------------------------------------------------------------------

    def deployment(self, model: str) -> tuple[int, DeploymentSpec]:
        revision, spec = self._cached(
            self._deployments,
            model,
            self.config.deployment_ttl_s,
            lambda: self._load_deployment(model),
        )
        return revision, spec

    def _load_deployment(self, model: str) -> tuple[int, DeploymentSpec]:
        current = self.deployments.get(model)
        return current.revision, current.spec

    def _resolve_alias(self, model: str, alias: str) -> str:
        return self._cached(
            self._aliases,
            (model, alias),
            self.config.alias_ttl_s,
            lambda: self.registry.resolve(model, alias),
        )

    def _cached(
        self, table: dict[Any, tuple[float, Any]], key: Any, ttl: float, load: Callable[[], T]
    ) -> T:
        """TTL cache that never makes a request wait for a refresh: an expired entry is served
        while one background thread reloads it; only a missing entry is loaded in line."""
        now = time.monotonic()
        with self._lock:
            hit = table.get(key)
            if hit is not None and now - hit[0] < ttl:
                return hit[1]  # type: ignore[no-any-return]
            refreshing = self._refreshing.setdefault(key, threading.Lock())
        if hit is not None:
            if refreshing.acquire(blocking=False):
                threading.Thread(
                    target=self._refresh, args=(table, key, load, refreshing), daemon=True
                ).start()
            return hit[1]  # type: ignore[no-any-return]
        with refreshing:
            with self._lock:  # loaded while we waited?
                fresh = table.get(key)
            if fresh is not None:
                return fresh[1]  # type: ignore[no-any-return]
            value = load()
            with self._lock:
                table[key] = (time.monotonic(), value)
            return value

    def _refresh(
        self, table: dict[Any, tuple[float, Any]], key: Any, load: Callable[[], T], lock: Any
    ) -> None:
        try:
            value = load()
            with self._lock:
                table[key] = (time.monotonic(), value)
        except NotFound:
            with self._lock:  # gone (alias deleted, model removed): the next request sees it
                table.pop(key, None)
        except Exception:
            log.exception("background refresh failed", extra={"key": str(key)})
        finally:
            lock.release()

    def _version_of(self, model: str, arm: Arm) -> str:
        return self._resolve_alias(model, arm.alias) if arm.alias else str(arm.version)

    def _ref_version(self, model: str, ref: str) -> str:
        kind, _, value = ref.partition(":")
        return self._resolve_alias(model, value) if kind == "alias" else value

    # -- predict -------------------------------------------------------------------------------

    def predict(
        self,
        model: str,
        inputs: Sequence[Mapping[str, Any]],
        *,
        subject_id: str | None = None,
        alias: str | None = None,
        version: str | None = None,
    ) -> ServedPrediction:
        started = time.perf_counter()
        revision, spec = self.deployment(model)
        if version is not None:
            # a version the client names must exist: fallbacks cover failures of a real
            # version, never a typo (which would otherwise be answered by another version)
            self._require_version(model, check_version(version))
            arm = Arm(name="explicit", version=version, weight=100)
        elif alias is not None:
            arm = Arm(name="explicit", alias=check_alias(alias), weight=100)
        else:
            arm = spec.choose(subject_id)
        chosen = self._version_of(model, arm)
        candidates = [chosen] + [self._safe_ref(model, r) for r in spec.fallback.chain]
        chain: list[str] = []
        for v in candidates:
            if v and v not in chain:
                chain.append(v)

        digests = [input_hash(dict(item)) for item in inputs]
        outputs, served_version, served_by, hits = self._serve_chain(
            model, chain, inputs, digests, spec
        )
        served_by = {"version": served_version, "arm": arm.name, **served_by}
        elapsed = time.perf_counter() - started
        ids = [new_id() for _ in outputs]
        if self.ledger is not None:
            now = datetime.now(UTC)
            per_item = elapsed * 1000 / max(1, len(outputs))
            self.ledger.record(
                [
                    PredictionRecord(
                        id=pid,
                        model=model,
                        version=served_version,
                        arm=arm.name,
                        subject_id=subject_id,
                        input_hash=digest,
                        inputs=dict(item) if self.config.ledger_inputs else None,
                        output=out,
                        latency_ms=per_item,
                        cache_hit=hit,
                        served_by=served_by,
                        created_at=now,
                    )
                    for pid, digest, item, out, hit in zip(
                        ids, digests, inputs, outputs, hits, strict=True
                    )
                ]
            )
        if self.metrics is not None:
            self.metrics.request(model, served_version, arm.name, len(outputs), elapsed, sum(hits))
        mirror = spec.mode == "shadow" and version is None and alias is None
        if mirror and spec.shadow and random.random() < spec.shadow.fraction:
            self._mirror(model, spec, spec.arm(spec.shadow.arm), inputs, digests, ids, subject_id)
        return ServedPrediction(
            model=model,
            version=served_version,
            arm=arm.name,
            alias=arm.alias,
            outputs=outputs,
            prediction_ids=ids,
            served_by=served_by,
            cache_hits=sum(hits),
            latency_ms=elapsed * 1000,
            deployment_revision=revision,
        )

    def _require_version(self, model: str, version: str) -> None:
        """``NotFound`` unless ``model`` has ``version`` (loaded versions exist: no lookup)."""
        if not self.models.has(model, version):
            self.registry.get_version(model, version)

    def _safe_ref(self, model: str, ref: str) -> str | None:
        try:
            return self._ref_version(model, ref)
        except NotFound:
            return None

    def _serve_chain(
        self,
        model: str,
        chain: list[str],
        inputs: Sequence[Mapping[str, Any]],
        digests: list[str],
        spec: DeploymentSpec,
    ) -> tuple[list[dict[str, Any]], str, dict[str, Any], list[bool]]:
        reasons: list[dict[str, str]] = []
        last_error: Exception | None = None
        for position, version in enumerate(chain):
            # out-of-range inputs send the primary to the fallbacks; the fallbacks answer them
            check_range = position == 0 and len(chain) > 1 and spec.fallback.out_of_range
            try:
                outputs, hits = self._serve_version(
                    model, version, inputs, digests, spec, check_range
                )
            except InvalidInput:
                if position == 0:
                    raise
                last_error = None
                reasons.append({"version": version, "reason": "invalid_input"})
                continue
            except Exception as e:  # errors, timeouts, open breaker, out of range: next one
                reason = _reason(e)
                reasons.append({"version": version, "reason": reason})
                last_error = e
                if self.metrics is not None:
                    self.metrics.fallback(model, version, reason)
                log.warning(
                    "fallback", extra={"model": model, "version": version, "reason": reason}
                )
                continue
            extra: dict[str, Any] = {"fallback": bool(reasons)}
            if reasons:
                extra["fallback_from"] = reasons
                extra["reason"] = reasons[0]["reason"]
            return outputs, version, extra, hits
        if isinstance(last_error, LearnloopError):
            raise last_error
        raise ModelUnavailable(model, reasons) from last_error

    def _serve_version(
        self,
        model: str,
        version: str,
        inputs: Sequence[Mapping[str, Any]],
        digests: list[str],
        spec: DeploymentSpec,
        check_range: bool,
    ) -> tuple[list[dict[str, Any]], list[bool]]:
        loaded = self.models.get(model, version)
        loaded.breaker.check(spec.fallback)
        outputs: list[dict[str, Any] | None] = [None] * len(inputs)
        hits = [False] * len(inputs)
        keys: list[str] = []
        # families whose outputs depend on state beyond the input (learner states) opt out
        caching = spec.cache.enabled and getattr(loaded.instance, "cacheable", True)
        if caching:
            generation = self.cache.generation(model)
            keys = [cache_key(model, generation, version, d) for d in digests]
            for i, key in enumerate(keys):
                cached = self.cache.get(key)
                if cached is not None:
                    outputs[i], hits[i] = cached, True
        missing = [i for i, o in enumerate(outputs) if o is None]
        if missing:
            items = loaded.instance.validate_inputs([inputs[i] for i in missing])
            if check_range:
                issues = loaded.instance.out_of_range(items)
                if issues:
                    raise OutOfRange("; ".join(f"{x.loc}: {x.message}" for x in issues[:3]))
            try:
                fresh = self._run(loaded, items, spec)
            except Exception:
                loaded.breaker.record(False, spec.fallback)
                raise
            loaded.breaker.record(True, spec.fallback)
            for i, out in zip(missing, fresh, strict=True):
                dumped = out.model_dump(mode="json")
                outputs[i] = dumped
                if caching:
                    self.cache.set(keys[i], dumped, spec.cache.ttl_s)
        return [o for o in outputs if o is not None], hits

    def _run(self, loaded: LoadedVersion, items: list[Any], spec: DeploymentSpec) -> list[Any]:
        timeout = _timeout_s(spec.fallback)
        if spec.batching.enabled:
            batcher = loaded.batcher(
                spec.batching.max_batch_size, spec.batching.max_wait_ms, self.metrics
            )
            return batcher.submit(items).result(timeout)
        if timeout is None:
            return list(loaded.instance.predict(items))
        pool_future = self._shadow_pool.submit(loaded.instance.predict, items)
        return list(pool_future.result(timeout))

    # -- shadow ----------------------------------------------------------------------------------

    def _mirror(
        self,
        model: str,
        spec: DeploymentSpec,
        arm: Arm,
        inputs: Sequence[Mapping[str, Any]],
        digests: list[str],
        primary_ids: list[str],
        subject_id: str | None,
    ) -> None:
        if not self._shadow_slots.acquire(blocking=False):
            if self.metrics is not None:
                self.metrics.shadow_dropped(model)
            return

        def run() -> None:
            try:
                started = time.perf_counter()
                version = self._version_of(model, arm)
                loaded = self.models.get(model, version)
                items = loaded.instance.validate_inputs(list(inputs))
                outputs = [o.model_dump(mode="json") for o in loaded.instance.predict(items)]
                per_item = (time.perf_counter() - started) * 1000 / max(1, len(outputs))
                if self.ledger is not None:
                    now = datetime.now(UTC)
                    self.ledger.record(
                        [
                            PredictionRecord(
                                id=new_id(),
                                model=model,
                                version=version,
                                arm=arm.name,
                                subject_id=subject_id,
                                input_hash=digest,
                                inputs=None,
                                output=out,
                                latency_ms=per_item,
                                cache_hit=False,
                                served_by={"version": version, "arm": arm.name, "shadow": True},
                                created_at=now,
                                shadow_of=pid,
                            )
                            for digest, out, pid in zip(digests, outputs, primary_ids, strict=True)
                        ]
                    )
            except Exception:
                log.exception("shadow prediction failed", extra={"model": model})
            finally:
                self._shadow_slots.release()

        self._shadow_pool.submit(run)

    def close(self) -> None:
        self._shadow_pool.shutdown(wait=True, cancel_futures=False)
        self.models.close()


class ModelUnavailable(LearnloopError):
    """Every version in the chain failed."""

    def __init__(self, model: str, reasons: list[dict[str, str]]) -> None:
        tried = ", ".join(f"{r['version']} ({r['reason']})" for r in reasons)
        super().__init__(f"no version of {model!r} could answer: {tried}")
        self.reasons = reasons


def _timeout_s(fallback: FallbackSpec) -> float | None:
    """The model time limit in seconds; a stored value outside the validated range (written
    before the range was enforced, or by hand) is clamped, never trusted into a wait."""
    limit = fallback.timeout_ms
    if limit is None or not math.isfinite(limit) or limit <= 0:
        return None
    return min(limit, MAX_TIMEOUT_MS) / 1000


def _reason(error: BaseException) -> str:
    if isinstance(error, BreakerOpen):
        return "circuit_open"
    if isinstance(error, OutOfRange):
        return "out_of_range"
    if isinstance(error, FutureTimeout | TimeoutError):
        return "timeout"
    return "error"

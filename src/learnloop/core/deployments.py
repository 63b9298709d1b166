"""Deployments: the traffic policy of a model, stored with every revision and audited.

A deployment has **arms** (an alias or a version each, with a weight) and a **mode**:

* ``single`` — one arm takes all traffic.
* ``ab`` — two or more arms; weights sum to 100; a subject keeps its arm (sticky by a hash of
  ``salt`` + subject id).
* ``canary`` — arms ``stable`` and a candidate; the candidate's share follows ``canary.steps``
  (e.g. 5 → 25 → 50 → 100 %), advanced by ``promote``.
* ``blue_green`` — two arms; ``blue_green.active`` takes all traffic; switching is one atomic
  revision, and switching back is another.
* ``shadow`` — the serving arms answer; ``shadow.arm`` receives a mirrored fraction of requests
  off the response path and both outputs are recorded.

Every change writes a new revision (never edits one), so the history is the audit trail and a
rollback re-applies the previous revision. When a model has no deployment, the implicit one is
``single`` on alias ``champion``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from learnloop.core.errors import Conflict, InvalidInput, Issue
from learnloop.core.family import issues_of
from learnloop.core.identifiers import ALIAS_RE, VERSION_RE, AliasName, Version
from learnloop.core.inputs import ClientModel

Mode = Literal["single", "ab", "canary", "blue_green", "shadow"]
BUCKETS = 10_000
MAX_TIMEOUT_MS = 600_000.0
"""The longest per-request model time limit a deployment may set (10 minutes)."""


class Strict(ClientModel):
    # every number finite and bounded: a stored spec is trusted by the engine on every request
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Arm(Strict):
    """One way to answer: an alias (followed as it moves) or a pinned version."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
    alias: AliasName | None = None
    version: Version | None = None
    weight: float = Field(0.0, ge=0, le=100, description="Share of traffic in percent.")

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if (self.alias is None) == (self.version is None):
            raise ValueError("give exactly one of alias or version")
        return self

    @property
    def ref(self) -> str:
        return f"alias:{self.alias}" if self.alias else f"version:{self.version}"


class CanarySpec(Strict):
    candidate: str = Field(max_length=32, description="Name of the candidate arm.")
    steps: list[Annotated[float, Field(gt=0, le=100)]] = Field(
        default=[5, 25, 50, 100], min_length=1, max_length=100
    )
    step: int = Field(0, ge=0, le=99, description="Index into steps of the current share.")

    @model_validator(mode="after")
    def _steps(self) -> Self:
        if any(not 0 < s <= 100 for s in self.steps) or self.steps != sorted(self.steps):
            raise ValueError("steps must rise within (0, 100]")
        if self.step >= len(self.steps):
            raise ValueError(f"step {self.step} is past the last of {len(self.steps)} steps")
        return self


class BlueGreenSpec(Strict):
    active: str = Field(max_length=32, description="Name of the arm taking all traffic.")


class ShadowSpec(Strict):
    arm: str = Field(max_length=32, description="Name of the arm that receives mirrored traffic.")
    fraction: float = Field(1.0, gt=0, le=1, description="Share of requests mirrored.")


class FallbackSpec(Strict):
    chain: list[Annotated[str, Field(max_length=80)]] = Field(
        default_factory=list,
        max_length=16,
        description="Refs tried in order when the chosen version fails: `version:N`, `alias:NAME`.",
    )
    timeout_ms: float | None = Field(
        None, gt=0, le=MAX_TIMEOUT_MS, description="Per-request model time limit (≤ 10 min)."
    )
    breaker_failures: int = Field(
        5, ge=1, le=1_000_000, description="Consecutive failures that open it."
    )
    breaker_reset_s: float = Field(
        30.0, gt=0, le=86_400, description="Open time before a retry (≤ 1 day)."
    )
    out_of_range: bool = Field(True, description="Fall back on out-of-range inputs.")


class CacheSpec(Strict):
    enabled: bool = False
    ttl_s: float = Field(60.0, gt=0, le=30 * 86_400, description="Seconds (≤ 30 days).")


class BatchingSpec(Strict):
    enabled: bool = True
    max_batch_size: int = Field(64, ge=1, le=10_000)
    max_wait_ms: float = Field(
        0.0,
        ge=0,
        le=1_000,
        description="Wait for company after the first item; 0 = take what is queued.",
    )


class DeploymentSpec(Strict):
    """What a client sends to create or change a deployment."""

    mode: Mode = "single"
    arms: list[Arm] = Field(min_length=1, max_length=32)
    salt: str | None = Field(
        None,
        max_length=64,
        description="Seed of the sticky assignment. Unset: the deployment service keeps the "
        "current one (subjects stay on their arms across revisions) or draws a new one.",
    )
    canary: CanarySpec | None = None
    blue_green: BlueGreenSpec | None = None
    shadow: ShadowSpec | None = None
    fallback: FallbackSpec = Field(default_factory=FallbackSpec)  # type: ignore[arg-type]
    cache: CacheSpec = Field(default_factory=CacheSpec)  # type: ignore[arg-type]
    batching: BatchingSpec = Field(default_factory=BatchingSpec)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError("arm names must be unique")
        refs = {
            "canary": self.canary and self.canary.candidate,
            "blue_green": self.blue_green and self.blue_green.active,
            "shadow": self.shadow and self.shadow.arm,
        }
        for section, name in refs.items():
            if name and name not in names:
                raise ValueError(f"{section} names arm {name!r}, which is not in arms")
        need = {"canary": self.canary, "blue_green": self.blue_green, "shadow": self.shadow}
        if self.mode in need and need[self.mode] is None:
            raise ValueError(f"mode {self.mode!r} needs its {self.mode!r} section")
        if self.mode in ("canary", "blue_green") and len(self.arms) != 2:
            raise ValueError(f"mode {self.mode!r} needs exactly 2 arms")
        if self.mode == "single" and len(self.arms) != 1:
            raise ValueError("mode 'single' needs exactly 1 arm")
        serving = self.serving_arms()
        if self.mode in ("ab", "shadow") and len(serving) > 1:
            total = sum(a.weight for a in serving)
            if abs(total - 100) > 1e-6:
                raise ValueError(f"weights of the serving arms sum to {total:g}, not 100")
        if self.mode == "shadow" and not serving:
            raise ValueError("shadow mode needs a serving arm besides the shadow arm")
        for ref in self.fallback.chain:
            kind, _, value = ref.partition(":")
            pattern = {"version": VERSION_RE, "alias": ALIAS_RE}.get(kind)
            if pattern is None or not pattern.match(value):
                shown = ref if len(ref) <= 80 else ref[:80] + "…"
                raise ValueError(f"fallback ref {shown!r}: use version:N or alias:NAME")
        return self

    def serving_arms(self) -> list[Arm]:
        shadow = self.shadow.arm if self.mode == "shadow" and self.shadow else None
        return [a for a in self.arms if a.name != shadow]

    def arm(self, name: str) -> Arm:
        return next(a for a in self.arms if a.name == name)

    def effective_weights(self) -> list[tuple[Arm, float]]:
        """Each serving arm with its share of traffic in percent (summing to 100)."""
        if self.mode == "single":
            return [(self.arms[0], 100.0)]
        if self.mode == "canary" and self.canary:
            share = self.canary.steps[self.canary.step]
            cand = self.arm(self.canary.candidate)
            stable = next(a for a in self.arms if a.name != cand.name)
            return [(stable, 100.0 - share), (cand, share)]
        if self.mode == "blue_green" and self.blue_green:
            return [(self.arm(self.blue_green.active), 100.0)]
        serving = self.serving_arms()
        if len(serving) == 1:
            return [(serving[0], 100.0)]
        return [(a, a.weight) for a in serving]

    def choose(self, subject_id: str | None, rng: Callable[[], float] = random.random) -> Arm:
        """The serving arm for a request; sticky per subject id, random without one."""
        weights = self.effective_weights()
        if len(weights) == 1:
            return weights[0][0]
        if subject_id is None:
            point = rng() * BUCKETS
        else:
            digest = hashlib.blake2b(f"{self.salt or ''}:{subject_id}".encode(), digest_size=8)
            point = int.from_bytes(digest.digest(), "big") % BUCKETS
        cumulative = 0.0
        for arm, weight in weights:
            cumulative += weight * BUCKETS / 100
            if point < cumulative:
                return arm
        return weights[-1][0]


IMPLICIT = DeploymentSpec(
    mode="single", arms=[Arm(name="champion", alias="champion", weight=100.0)], salt="0"
)


def parse_spec(raw: object) -> DeploymentSpec:
    try:
        return DeploymentSpec.model_validate(raw)
    except ValidationError as e:
        raise InvalidInput("invalid deployment", issues_of(e)) from e


class Deployment(BaseModel):
    """One stored revision."""

    model_config = ConfigDict(frozen=True)

    model: str
    revision: int
    spec: DeploymentSpec
    actor: str
    reason: str
    created_at: datetime | None = None


def promote(spec: DeploymentSpec) -> tuple[DeploymentSpec, str]:
    """The next rollout step: canary +1 step (at 100 % the candidate becomes the single arm);
    blue-green switches the active arm; shadow makes the shadow arm the single arm."""
    if spec.mode == "canary" and spec.canary:
        if spec.canary.step + 1 < len(spec.canary.steps):
            nxt = spec.canary.model_copy(update={"step": spec.canary.step + 1})
            share = nxt.steps[nxt.step]
            return spec.model_copy(update={"canary": nxt}), f"canary at {share:g}%"
        cand = spec.arm(spec.canary.candidate)
        return _single(spec, cand), f"canary complete: {cand.name} takes all traffic"
    if spec.mode == "blue_green" and spec.blue_green:
        other = next(a for a in spec.arms if a.name != spec.blue_green.active)
        switched = BlueGreenSpec(active=other.name)
        return spec.model_copy(update={"blue_green": switched}), f"switched to {other.name}"
    if spec.mode == "shadow" and spec.shadow:
        arm = spec.arm(spec.shadow.arm)
        return _single(spec, arm), f"shadow {arm.name} promoted to serve all traffic"
    raise Conflict(f"nothing to promote in mode {spec.mode!r}")


def _single(spec: DeploymentSpec, arm: Arm) -> DeploymentSpec:
    return spec.model_copy(
        update={
            "mode": "single",
            "arms": [arm.model_copy(update={"weight": 100.0})],
            "canary": None,
            "blue_green": None,
            "shadow": None,
        }
    )


def require_arm_targets(spec: DeploymentSpec, exists: Callable[[Arm], bool]) -> None:
    """Raise ``InvalidInput`` naming every arm whose alias/version does not exist."""
    issues = [
        Issue(f"arms[{i}].{'alias' if a.alias else 'version'}", f"{a.ref} does not exist")
        for i, a in enumerate(spec.arms)
        if not exists(a)
    ]
    if issues:
        raise InvalidInput("deployment names missing versions", issues)

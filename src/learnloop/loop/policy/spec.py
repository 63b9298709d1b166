"""The policy of a model: when to retrain, which gates a candidate must pass, how it rolls out,
when it rolls back. Declarative (YAML or JSON), validated, stored as revisions.

```yaml
retrain:
  on_drift: true          # a drift report with drift since the last retrain triggers
  min_new_labels: 200     # …or this many newly labelled predictions
  every_s: null           # …or a schedule
  cooldown_s: 3600        # never two retrains closer than this
training:
  params: {n_estimators: 200}     # on top of the champion's params
  include_champion_data: true     # replay: the champion's training rows join the new ones
  valid_fraction: 0.2             # the latest labelled predictions are the frozen eval set
monitoring:
  drift_every_s: 3600     # the drift monitor runs on the ledger this often
  drift_window_s: 86400
gates:
  metrics: [{metric: roc_auc, max_drop: 0.01}]
  fairness: {attributes: [region], bounds: {demographic_parity_difference: 0.1}}
  max_latency_p99_ms: 50
rollout:
  shadow_fraction: 1.0
  shadow_min_requests: 200
  canary_steps: [10, 50]
  step_min_requests: 200
  step_dwell_s: 0
rollback:
  max_error_rate: 0.01    # candidate-arm requests that failed over to the champion
  min_requests: 20
  max_latency_p99_ms: null
  max_outcome_drop: 0.05  # candidate's online outcome (feedback) below the champion's by more
```
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from learnloop.core.errors import InvalidInput
from learnloop.core.family import issues_of


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetrainTriggers(Strict):
    on_drift: bool = True
    min_new_labels: int | None = Field(200, ge=1)
    every_s: float | None = Field(None, gt=0)
    cooldown_s: float = Field(3600.0, ge=0)


class TrainingSpec(Strict):
    params: dict[str, Any] = Field(default_factory=dict)
    include_champion_data: bool = True
    valid_fraction: float = Field(0.2, gt=0, lt=0.9)


class MetricGate(Strict):
    metric: str
    max_drop: float = Field(0.0, ge=0)


class FairnessGate(Strict):
    attributes: list[str] = Field(..., min_length=1, description="Sensitive attributes.")
    bounds: dict[str, float] = Field(
        default_factory=lambda: {"demographic_parity_difference": 0.1},
        description="Headline metric → bound (differences: at most; ratios: at least).",
    )
    min_group_size: int = Field(30, ge=1)


class Gates(Strict):
    fairness: FairnessGate | None = None
    metrics: list[MetricGate] = Field(
        default_factory=lambda: [MetricGate(metric="roc_auc", max_drop=0.01)]
    )
    max_latency_p99_ms: float | None = Field(None, gt=0)
    n_boot: int = Field(500, ge=50, le=10_000)


class Rollout(Strict):
    shadow_fraction: float = Field(1.0, gt=0, le=1)
    shadow_min_requests: int = Field(200, ge=1)
    canary_steps: list[float] = Field(default_factory=lambda: [10.0, 50.0], min_length=1)
    step_min_requests: int = Field(200, ge=1)
    step_dwell_s: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _steps(self) -> Rollout:
        if any(not 0 < s < 100 for s in self.canary_steps) or self.canary_steps != sorted(
            self.canary_steps
        ):
            raise ValueError("canary_steps must rise within (0, 100); 100 % is the promotion")
        return self


class Rollback(Strict):
    max_error_rate: float = Field(0.01, ge=0, le=1)
    min_requests: int = Field(20, ge=1)
    max_latency_p99_ms: float | None = Field(None, gt=0)
    max_outcome_drop: float | None = Field(
        None,
        ge=0,
        description="Online outcome from feedback (correct, thumbs, rating… as in A/B results): "
        "roll back when the candidate arm's mean is below the champion arm's by more than this.",
    )
    min_outcomes: int = Field(30, ge=1, description="Outcomes per arm before comparing them.")


class Monitoring(Strict):
    drift_every_s: float | None = Field(
        None, gt=0, description="Run the drift monitor this often (idle stage); unset: never."
    )
    drift_window_s: float = Field(86_400.0, gt=0, description="The monitored window.")


class Policy(Strict):
    enabled: bool = True
    monitoring: Monitoring = Field(default_factory=Monitoring)
    retrain: RetrainTriggers = Field(default_factory=RetrainTriggers)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    gates: Gates = Field(default_factory=Gates)
    rollout: Rollout = Field(default_factory=Rollout)
    rollback: Rollback = Field(default_factory=Rollback)


def parse_policy(raw: object) -> Policy:
    try:
        return Policy.model_validate(raw)
    except ValidationError as e:
        raise InvalidInput("invalid policy", issues_of(e)) from e

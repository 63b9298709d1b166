"""A resolved search: everything a backend (Optuna in-process, or Ray Tune) needs to run it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from learnloop.core.family import AnyFamily
from learnloop.loop.tuning.space import SearchSpace
from learnloop.loop.tuning.trials import BestArtifact, Direction, TrialTracker

JOB_ATTR = "learnloop.job_id"
"""Trial user attribute naming the job that ran it (a resumed job counts its own trials)."""


@dataclass(frozen=True)
class SearchPlan:
    """One job's search, validated and resolved (metric, direction, trials still to run)."""

    family_cls: type[AnyFamily]
    frame: pd.DataFrame
    base: dict[str, Any]  # the fixed params every trial starts from
    space: SearchSpace
    metric: str
    direction: Direction
    study_name: str
    n_trials: int  # still to run in this job
    timeout_s: float | None
    workers: int
    seed: int
    job_id: str

    def trial_params(self, values: dict[str, Any]) -> dict[str, Any]:
        """The full, validated params of a trial that picked ``values`` from the space."""
        return self.family_cls.parse_params({**self.base, **values}).model_dump()


@dataclass
class SearchRun:
    """What a backend reports to and uses from the job while it runs."""

    tracker: TrialTracker
    best: BestArtifact
    check_control: Callable[[], None]
    workdir: Path  # the job's checkpoint folder (Ray keeps its experiment state there)

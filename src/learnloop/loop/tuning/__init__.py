"""Hyperparameter search: Optuna studies stored in learnloop's database, run as ``tune`` jobs
in-process or on Ray Tune. See ``docs/tuning.md``."""

from learnloop.loop.tuning.search import TuneRequest, TuningService
from learnloop.loop.tuning.space import DEFAULT_SPACES, ParamSpec, SearchSpace, default_space
from learnloop.loop.tuning.storage import open_study_storage

__all__ = [
    "DEFAULT_SPACES",
    "ParamSpec",
    "SearchSpace",
    "TuneRequest",
    "TuningService",
    "default_space",
    "open_study_storage",
]

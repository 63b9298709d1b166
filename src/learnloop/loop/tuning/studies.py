"""Studies in learnloop's database: open or continue one, warm-start it, summarize it.

A study carries user attributes ``learnloop.model``, ``learnloop.family`` and
``learnloop.metric``; continuing a study with another metric or direction is a ``Conflict``.
Warm start enqueues, as the first trials, the best params of every *other* study of the same
model (restricted to the current space; params already tried are skipped), so a new study
starts where earlier ones ended; a continued study keeps its own history for the sampler.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from learnloop.core.errors import Conflict, NotFound
from learnloop.loop.tuning.plan import JOB_ATTR
from learnloop.loop.tuning.space import SearchSpace
from learnloop.loop.tuning.storage import open_study_storage

if TYPE_CHECKING:
    import optuna
    from optuna.storages import RDBStorage

MODEL_ATTR = "learnloop.model"
FAMILY_ATTR = "learnloop.family"
METRIC_ATTR = "learnloop.metric"


class StudyBook:
    """The studies of one database. The storage opens on first use; thread-safe."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._storage: RDBStorage | None = None
        self._lock = threading.Lock()

    @property
    def storage(self) -> RDBStorage:
        with self._lock:
            if self._storage is None:
                self._storage = open_study_storage(self.database_url)
            return self._storage

    def open(
        self, name: str, direction: str, *, seed: int, model: str, family: str, metric: str
    ) -> optuna.Study:
        """Create study ``name`` or continue it (same metric and direction required)."""
        import optuna

        from learnloop.loop.tuning.optuna_backend import make_pruner

        storage = self.storage
        try:
            tried = storage.get_n_trials(storage.get_study_id_from_name(name))
        except KeyError:
            tried = 0
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            direction=direction,
            load_if_exists=True,
            pruner=make_pruner(),
            # a fresh seed per continuation, so random start-up trials are not repeated
            sampler=optuna.samplers.TPESampler(seed=seed + tried),
        )
        attrs = study.user_attrs
        if attrs.get(METRIC_ATTR, metric) != metric:
            raise Conflict(f"study {name!r} optimizes {attrs[METRIC_ATTR]!r}, not {metric!r}")
        if study.direction.name.lower() != direction:
            raise Conflict(f"study {name!r} is set to {study.direction.name.lower()}")
        for key, value in ((MODEL_ATTR, model), (FAMILY_ATTR, family), (METRIC_ATTR, metric)):
            if key not in attrs:
                study.set_user_attr(key, value)
        return study

    def settle_job(self, study: optuna.Study, job_id: str) -> int:
        """Trials a (resumed) job already finished; its trials left RUNNING are marked FAIL."""
        from optuna.trial import TrialState

        finished = 0
        for trial in study.get_trials(deepcopy=False):
            if trial.user_attrs.get(JOB_ATTR) != job_id:
                continue
            if trial.state is TrialState.RUNNING:
                self.storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
                finished += 1
            elif trial.state.is_finished():
                finished += 1
        return finished

    def warm_start(self, study: optuna.Study, model: str, space: SearchSpace) -> int:
        """Enqueue the best params of the model's other studies; returns how many."""
        import optuna

        enqueued = 0
        for summary in optuna.get_all_study_summaries(self.storage, include_best_trial=True):
            other = summary.study_name
            if other == study.study_name or summary.user_attrs.get(MODEL_ATTR) != model:
                continue
            if summary.best_trial is None:
                continue
            params = space.restrict(summary.best_trial.params)
            if not params:
                continue
            before = len(study.get_trials(deepcopy=False))
            study.enqueue_trial(params, skip_if_exists=True)
            enqueued += len(study.get_trials(deepcopy=False)) - before
        return enqueued

    def summary(self, name: str) -> dict[str, Any]:
        """Trials with states, values, params and intermediate values; the best trial."""
        import optuna

        try:
            study = optuna.load_study(study_name=name, storage=self.storage)
        except KeyError as e:
            raise NotFound("study", name) from e
        trials = study.get_trials(deepcopy=False)
        states: dict[str, int] = {}
        for t in trials:
            states[t.state.name] = states.get(t.state.name, 0) + 1
        done = [t for t in trials if t.state is optuna.trial.TrialState.COMPLETE]
        best = study.best_trial if done else None
        return {
            "study": name,
            "model": study.user_attrs.get(MODEL_ATTR),
            "family": study.user_attrs.get(FAMILY_ATTR),
            "metric": study.user_attrs.get(METRIC_ATTR),
            "direction": study.direction.name.lower(),
            "states": states,
            "best_trial": best.number if best else None,
            "best_value": best.value if best else None,
            "best_params": dict(best.params) if best else None,
            "best_metrics": best.user_attrs.get("metrics") if best else None,
            "trials": [
                {
                    "number": t.number,
                    "state": t.state.name,
                    "value": t.value,
                    "params": dict(t.params),
                    "intermediate": {int(k): v for k, v in t.intermediate_values.items()},
                    "job_id": t.user_attrs.get(JOB_ATTR),
                    "started": t.datetime_start.isoformat() if t.datetime_start else None,
                    "seconds": t.duration.total_seconds() if t.duration else None,
                }
                for t in trials
            ],
        }

    def list(self) -> list[dict[str, Any]]:
        """One line per study in the database."""
        import optuna

        out = []
        for s in optuna.get_all_study_summaries(self.storage, include_best_trial=True):
            out.append(
                {
                    "study": s.study_name,
                    "model": s.user_attrs.get(MODEL_ATTR),
                    "metric": s.user_attrs.get(METRIC_ATTR),
                    "direction": s.direction.name.lower(),
                    "trials": s.n_trials,
                    "best_value": s.best_trial.value if s.best_trial else None,
                }
            )
        return out

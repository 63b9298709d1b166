"""Incremental training: continue a previous version, replay its data, measure forgetting.

A ``train`` request with ``warm_start_from`` (a version number or ``alias:NAME`` of the same
model) fits the new data by continuing that version (the family's
:meth:`~learnloop.core.family.ModelFamily.fit_incremental`) instead of starting over.

The previous version's training snapshot is cut in two with a fixed rule:

* the **old evaluation set** — its rows marked ``valid`` in the split column (the previous
  version's ``split_column`` param, else a column named ``split``) when there are any, else a
  fixed-seed sample of :data:`HOLDOUT_FRACTION` of its rows;
* the **replay pool** — every other row. ``replay_fraction`` of the pool, sampled with the
  request's ``params.seed``, is mixed into the new data, marked in
  :data:`~learnloop.core.family.REPLAY_COLUMN` (training rows only).

The forgetting report scores the previous and the new version on the old evaluation set with the
family's main metric: ``forgetting`` is how much the new version lost there (positive = worse,
whether the metric is higher- or lower-is-better).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from learnloop.core.datasets import DatasetService
from learnloop.core.errors import InvalidInput, Issue, NotFound
from learnloop.core.family import REPLAY_COLUMN, AnyFamily
from learnloop.core.identifiers import ALIAS_RE
from learnloop.core.records import VersionRecord
from learnloop.core.registry import RegistryService

ALIAS_PREFIX = "alias:"
HOLDOUT_FRACTION = 0.2
HOLDOUT_SEED = 0
METRIC_PREFERENCE = ("roc_auc", "accuracy", "rmse", "mae", "r2", "f1", "log_loss")
"""The first of these that both versions report is the report's metric."""
LOWER_IS_BETTER = frozenset({"rmse", "mae", "log_loss"})
FIELD = "warm_start_from"


def resolve_previous(registry: RegistryService, model: str, ref: str) -> VersionRecord:
    """The version ``ref`` (``"3"`` or ``"alias:champion"``) names; ``InvalidInput`` on
    ``warm_start_from`` when it names nothing."""
    try:
        if ref.startswith(ALIAS_PREFIX):
            alias = ref.removeprefix(ALIAS_PREFIX)
            if not ALIAS_RE.match(alias):
                raise _bad(f"{alias!r} is not a valid alias name")
            version = registry.current(model, alias)
            if version is None:
                raise _bad(f"alias {alias!r} is not set on model {model!r}")
            return registry.get_version(model, version)
        if not re.fullmatch(r"[1-9][0-9]*", ref):
            raise _bad(f"{ref!r} is neither a version number nor 'alias:NAME'")
        return registry.get_version(model, ref)
    except NotFound as e:
        raise _bad(f"{e.kind} {e.name!r} not found (model {model!r})") from e


def check_warm_start(
    registry: RegistryService,
    datasets: DatasetService,
    family_cls: type[AnyFamily],
    *,
    model: str,
    ref: str,
    params: Any,
    needs_data: bool,
) -> VersionRecord:
    """The previous version a warm start would continue, after checking it can; else
    ``InvalidInput`` naming the offending fields."""
    version = resolve_previous(registry, model, ref)
    if version.family != family_cls.name:
        raise _bad(f"version {version.version} is a {version.family!r} model")
    if not family_cls.supports_warm_start:
        raise _bad(f"family {family_cls.name!r} does not support warm start")
    issues = family_cls.warm_start_issues(params, version.params)
    if needs_data:
        issues.extend(_snapshot_issues(datasets, version))
    if issues:
        raise InvalidInput("cannot continue the previous version", issues)
    return version


@dataclass(frozen=True)
class WarmStart:
    """What a warm-started job uses: the previous version, loaded, and its data split."""

    version: VersionRecord
    previous: AnyFamily
    replay: pd.DataFrame  # rows to mix into the new data
    holdout: pd.DataFrame | None  # the old evaluation set (None when not asked for)

    def mixed(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` followed by the replay rows (with ``frame``'s columns), marked in
        :data:`REPLAY_COLUMN`."""
        old = self.replay.reindex(columns=frame.columns)
        marked = [frame.assign(**{REPLAY_COLUMN: False}), old.assign(**{REPLAY_COLUMN: True})]
        return pd.concat(marked, ignore_index=True)


def prepare_warm_start(
    registry: RegistryService,
    datasets: DatasetService,
    family_cls: type[AnyFamily],
    version: VersionRecord,
    *,
    replay_fraction: float,
    seed: int,
    forgetting_eval: bool,
) -> WarmStart:
    """Load ``version`` and, when needed, split its training snapshot (module docstring)."""
    previous = family_cls.load(registry.registry.artifact_path(version.model, version.version))
    if version.dataset_id is None or not (replay_fraction > 0 or forgetting_eval):
        return WarmStart(version, previous, pd.DataFrame(), None)
    old = datasets.load(version.dataset_id)
    held = holdout_mask(old, version.params)
    pool = old[~held]
    replay = pool.sample(n=round(replay_fraction * len(pool)), random_state=seed)
    holdout = old[held].reset_index(drop=True) if forgetting_eval else None
    return WarmStart(version, previous, replay.sort_index(), holdout)


def holdout_mask(frame: pd.DataFrame, params: Mapping[str, Any]) -> np.ndarray:
    """True on the rows of a previous snapshot that form the old evaluation set."""
    column = params.get("split_column") or ("split" if "split" in frame.columns else None)
    if column is not None and column in frame.columns:
        marked = (frame[column].astype(str) == "valid").to_numpy()
        if marked.any():
            return np.asarray(marked)
    size = max(1, round(HOLDOUT_FRACTION * len(frame)))
    chosen = np.random.default_rng(HOLDOUT_SEED).choice(len(frame), size=size, replace=False)
    mask = np.zeros(len(frame), dtype=bool)
    mask[chosen] = True
    return mask


def forgetting_report(
    warm: WarmStart, new: AnyFamily, new_metrics: Mapping[str, float]
) -> dict[str, Any] | None:
    """``{"metric", "before", "after", "forgetting", "rows", "new_data"}``: the previous and
    the new version on the old evaluation set, and the new version's validation metric on the
    new data. ``None`` without an old evaluation set."""
    if warm.holdout is None or warm.holdout.empty:
        return None
    before = warm.previous.evaluate(warm.holdout)
    after = new.evaluate(warm.holdout)
    shared = [m for m in before if m in after]
    metric = next((m for m in METRIC_PREFERENCE if m in shared), shared[0])
    lost = before[metric] - after[metric]
    return {
        "metric": metric,
        "before": before[metric],
        "after": after[metric],
        "forgetting": -lost if metric in LOWER_IS_BETTER else lost,
        "rows": len(warm.holdout),
        "new_data": new_metrics.get(metric),
    }


def _snapshot_issues(datasets: DatasetService, version: VersionRecord) -> list[Issue]:
    if version.dataset_id is None:
        why = f"version {version.version} has no training snapshot"
    else:
        try:
            erased = bool(datasets.get(version.dataset_id).manifest.get("erased"))
        except NotFound:
            erased = True
        if not erased:
            return []
        why = f"the training snapshot {version.dataset_id} of version {version.version} is gone"
    return [Issue(FIELD, f"{why}; set replay_fraction to 0 and forgetting_eval to false")]


def _bad(message: str) -> InvalidInput:
    return InvalidInput("invalid warm start", [Issue(FIELD, message)])

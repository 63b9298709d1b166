"""One benchmark run: train on files (early stopping on validation), score the test file.

Used by ``learnloop bench kt`` and ``benchmarks/kt/run.py``. Protocol (as in the DKVMN and AKT
code): sequences are cut into chunks of ``max_len`` attempts, each chunk predicted on its own
from its start; every test attempt is scored, the first of each chunk included. pyKT's protocol
differs (it expands multi-skill questions and scores at the question level after filtering short
sequences), so its figures are not comparable with these.

Validation is the ``valid`` file when given, else ``valid_fraction`` of the training learners.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from learnloop.families.knowledge_tracing.data import concat_frames, load_interactions
from learnloop.families.knowledge_tracing.family import KnowledgeTracingFamily
from learnloop.families.knowledge_tracing.training import binary_metrics

Progress = Callable[[float, str, Mapping[str, float] | None], None]


@dataclass
class _Context:
    progress_fn: Progress | None

    def progress(
        self, fraction: float, message: str = "", metrics: Mapping[str, float] | None = None
    ) -> None:
        if self.progress_fn is not None:
            self.progress_fn(fraction, message, metrics)

    def save_checkpoint(self, state: object, step: int) -> None:
        return None

    def load_checkpoint(self) -> object | None:
        return None

    def check_control(self) -> None:
        return None


def training_frame(train: pd.DataFrame, valid: pd.DataFrame | None) -> pd.DataFrame:
    """Train (and valid) attempts in one table; a ``split`` column marks valid learners."""
    if valid is None:
        return train
    frame = concat_frames([train, valid])
    frame["split"] = np.where(frame["learner_id"].str.startswith("f1:"), "valid", "train")
    return frame


def run_frames(
    train: pd.DataFrame,
    valid: pd.DataFrame | None,
    test: pd.DataFrame,
    params: Mapping[str, Any],
    *,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fit on ``train`` (validating on ``valid``), then score ``test``; figures as a dict."""
    params = dict(params)
    frame = training_frame(train, valid)
    if valid is not None:
        params["split_column"] = "split"
    params.setdefault("order_column", "order")
    family = KnowledgeTracingFamily(params)
    started = time.perf_counter()
    fit = family.fit(frame, _Context(progress))
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    test = test.copy()
    if "split" in test.columns:
        test = test.drop(columns=["split"])
    scored = family.predict_table(test)
    predict_seconds = time.perf_counter() - started
    metrics = binary_metrics(scored["correct"].to_numpy(), scored["probability"].to_numpy())
    return {
        "auc": metrics.get("auc"),
        "accuracy": metrics.get("accuracy"),
        "log_loss": metrics.get("log_loss"),
        "train_seconds": round(train_seconds, 2),
        "predict_seconds": round(predict_seconds, 2),
        "model": family.params.model,
        "params": family.params.model_dump(mode="json"),
        "valid": {k: v for k, v in fit.metrics.items()},
        "fit": {k: v for k, v in fit.info.items()},
        "history": list(fit.history),
        "rows": {
            "train": int(len(train)),
            "valid": int(len(valid) if valid is not None else 0),
            "test": int(len(scored)),
        },  # fmt: skip
        "probabilities": scored["probability"].to_numpy(),
        "test_table": scored,
    }


def run_files(
    fmt: str,
    train: Sequence[Path],
    valid: Path | None,
    test: Path,
    params: Mapping[str, Any],
    *,
    progress: Progress | None = None,
    siblings: str = "merge",
) -> dict[str, Any]:
    """:func:`run_frames` on files of format ``fmt`` (several train files are concatenated).

    ``siblings="keep"`` scores the per-skill copies of multi-skill attempts as separate rows,
    as the source papers did (see :mod:`.data`): a figure for comparison, not a fair one."""
    frames = [load_interactions(p, fmt, siblings=siblings) for p in train]
    train_frame = frames[0] if len(frames) == 1 else concat_frames(frames)
    valid_frame = load_interactions(valid, fmt, siblings=siblings) if valid is not None else None
    test_frame = load_interactions(test, fmt, siblings=siblings)
    result = run_frames(train_frame, valid_frame, test_frame, params, progress=progress)
    result["format"] = fmt
    result["siblings"] = siblings
    result["files"] = {
        "train": [str(p) for p in train],
        "valid": str(valid) if valid else None,
        "test": str(test),
    }
    return result


def run_synthetic(
    params: Mapping[str, Any],
    *,
    learners: int = 4000,
    items: int = 50,
    skills: int = 5,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Simulated learners (Synthetic-5 shape by default): half train (30 % of it valid), half
    test; reports the oracle's AUC on the same test attempts next to the model's."""
    from learnloop.families.knowledge_tracing.synthetic import (
        generate_synthetic_data,
        oracle_probabilities,
    )

    data = generate_synthetic_data(
        learners, num_items=items, num_skills=skills, attempts=items, order="fixed", seed=seed
    )
    frame = data.interactions
    ids = frame["learner_id"].unique()
    half = len(ids) // 2
    train_ids, test_ids = ids[: int(half * 0.7)], ids[half:]
    valid_ids = ids[int(half * 0.7) : half]
    pick = frame["learner_id"].isin
    cols = ["learner_id", "item_id", "skill_ids", "correct", "order"]
    train, valid, test = (frame[pick(x)][cols] for x in (train_ids, valid_ids, test_ids))
    result = run_frames(train, valid, test, params, progress=progress)
    test_truth = frame[pick(test_ids)].reset_index(drop=True)
    oracle = oracle_probabilities(test_truth, data.truth)
    y = test_truth["correct"].to_numpy()
    result["oracle"] = binary_metrics(y, oracle)
    result["omniscient"] = binary_metrics(y, test_truth["p_true"].to_numpy())
    result["gap_to_oracle"] = (
        None if result["auc"] is None else round(result["oracle"]["auc"] - result["auc"], 4)
    )
    result["format"] = "synthetic"
    result["synthetic"] = {"learners": learners, "items": items, "skills": skills, "seed": seed}
    return result


def machine() -> dict[str, Any]:
    import os

    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }


def summary(result: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON written by ``learnloop bench kt --json``: no arrays, no tables."""
    return {k: v for k, v in result.items() if k not in ("probabilities", "test_table")}

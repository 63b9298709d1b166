"""Evaluating a candidate version against the champion on a frozen evaluation set.

The evaluation set is a dataset snapshot (immutable, so the comparison can be repeated): its
``valid`` rows when it carries a ``split`` column (the later rows of a time split), else all of
it. Both versions are run on the loaded models (never through ``predict``, so the ledger stays
clean) and scored with :mod:`learnloop.loop.evaluation`:

* every metric of the task for both (classification from class probabilities; regression from
  values), with the row count;
* each gate ``{"metric", "max_drop"}`` as a paired-bootstrap non-inferiority test
  (:func:`~learnloop.loop.evaluation.regression_gate`): the candidate passes when the worst end
  of the 95 % interval of (candidate − champion) is not a bigger drop than ``max_drop``;
* the candidate's latency profile (p50/p95/p99 per single-row call, rows/s) and, with
  ``max_latency_p99_ms``, a latency gate.

Also the ``evaluate`` job handler (``POST /v1/evaluation/run``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from learnloop.core.datasets import DatasetService
from learnloop.core.errors import InvalidInput, Issue
from learnloop.core.jobs import JobContext
from learnloop.core.registry import RegistryService
from learnloop.loop.jsonsafe import plain
from learnloop.loop.model_insight import ModelInsight

SPLIT = "split"


def _predict(instance: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o.model_dump(mode="json") for o in instance.predict(instance.validate_inputs(rows))]


class Evaluator:
    def __init__(
        self, insight: ModelInsight, datasets: DatasetService, registry: RegistryService
    ) -> None:
        self.insight = insight
        self.datasets = datasets
        self.registry = registry

    def evaluation_set(self, dataset_id: str, target: str) -> pd.DataFrame:
        frame = self.datasets.load(dataset_id)
        if SPLIT in frame.columns and (frame[SPLIT] == "valid").any():
            frame = frame[frame[SPLIT] == "valid"]
        if target not in frame.columns:
            raise InvalidInput("no labels", [Issue("dataset_id", f"no column {target!r}")])
        return frame.reset_index(drop=True)

    def evaluate(
        self,
        model: str,
        candidate: str,
        *,
        champion: str | None,
        dataset_id: str,
        gates: Sequence[Mapping[str, Any]] = (),
        max_latency_p99_ms: float | None = None,
        latency: bool = True,
        n_boot: int = 500,
        seed: int = 0,
    ) -> dict[str, Any]:
        from learnloop.loop.evaluation import (
            classification_metrics,
            latency_profile,
            regression_gate,
            regression_metrics,
        )

        cand_v, cand = self.insight.instance(model, candidate, None)
        record = self.registry.get_version(model, cand_v)
        target = str(record.params.get("target", ""))
        frame = self.evaluation_set(dataset_id, target)
        rows = frame.drop(columns=[target]).to_dict(orient="records")
        y = frame[target].tolist()
        outputs = {"candidate": _predict(cand, rows)}
        versions = {"candidate": cand_v}
        champ_instance = None
        if champion is not None:
            champ_v, champ_instance = self.insight.instance(model, champion, None)
            versions["champion"] = champ_v
            outputs["champion"] = _predict(champ_instance, rows)
        classify = outputs["candidate"][0].get("probabilities") is not None
        classes: list[str] = sorted(outputs["candidate"][0]["probabilities"]) if classify else []
        y_key = [str(v) for v in y] if classify else [float(v) for v in y]

        def scores(outs: list[dict[str, Any]]) -> np.ndarray:
            if classify:
                return np.array([[o["probabilities"][c] for c in classes] for o in outs])
            return np.array([float(o["prediction"]) for o in outs])

        predicted = {k: scores(v) for k, v in outputs.items()}
        metrics = {
            k: (
                classification_metrics(y_key, p, classes)
                if classify
                else regression_metrics(np.array(y_key), p)
            )
            for k, p in predicted.items()
        }
        gate_results = []
        for i, gate in enumerate(gates):
            if "champion" not in predicted:
                raise InvalidInput("gates need a champion", [Issue(f"gates.{i}", "no champion")])
            result = regression_gate(
                str(gate["metric"]),
                y_key,
                predicted["champion"],
                predicted["candidate"],
                max_drop=float(gate.get("max_drop", 0.0)),
                n_boot=n_boot,
                seed=seed,
                classes=classes or None,
            )
            gate_results.append({"kind": "metric", **plain(result.__dict__)})
        profile = None
        if latency:
            sample = rows[: min(len(rows), 50)]
            profile = latency_profile(lambda r: _predict(cand, r), sample, warmup=10, requests=100)
            if max_latency_p99_ms is not None:
                gate_results.append(
                    {
                        "kind": "latency",
                        "metric": "p99_ms",
                        "candidate": profile["p99_ms"],
                        "bound": max_latency_p99_ms,
                        "passed": profile["p99_ms"] <= max_latency_p99_ms,
                    }
                )
        return {
            "model": model,
            "versions": versions,
            "dataset_id": dataset_id,
            "rows": len(frame),
            "task": "classification" if classify else "regression",
            "metrics": plain(metrics),
            "gates": gate_results,
            "passed": all(g["passed"] for g in gate_results),
            "latency": plain(profile),
        }

    def run_job(self, ctx: JobContext) -> Mapping[str, Any]:
        p = dict(ctx.payload)
        ctx.progress(0.1, "loading versions and the evaluation set")
        return self.evaluate(
            str(p["model"]),
            str(p["candidate"]),
            champion=p.get("champion"),
            dataset_id=str(p["dataset_id"]),
            gates=p.get("gates") or [],
            max_latency_p99_ms=p.get("max_latency_p99_ms"),
            latency=bool(p.get("latency", True)),
            n_boot=int(p.get("n_boot", 500)),
            seed=int(p.get("seed", 0)),
        )

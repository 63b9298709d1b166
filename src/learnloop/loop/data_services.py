"""Differentially private releases of snapshots, and synthetic snapshots (a job).

DP releases are charged to the snapshot's budget in the same transaction that answers them
(sequential composition; all queries of a request or none): the budget is fixed at the first
release (``privacy.dp_epsilon``/``dp_delta`` unless the request sets it) and never grows.

Synthesis fits a generator on a snapshot and stores its samples as a new snapshot marked
``synthetic``, with the fidelity report and lineage in the manifest. A family may bring its
own generator (a ``synthesize(frame, params, request)`` classmethod returning a frame);
families whose data is one plain table (``tabular``) use the Gaussian copula of
:mod:`learnloop.loop.synthetic`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import pandas as pd

from learnloop.core.catalog import FamilyCatalog
from learnloop.core.datasets import DatasetService
from learnloop.core.errors import Conflict, InvalidInput, Issue
from learnloop.core.jobs import JobContext
from learnloop.core.stores import AuditLog, PrivacyBudgetStore

TABLE_FAMILIES = frozenset({"tabular"})


class DpReleaseService:
    def __init__(
        self,
        datasets: DatasetService,
        budgets: PrivacyBudgetStore,
        audit: AuditLog,
        *,
        default_epsilon: float,
        default_delta: float,
    ) -> None:
        self.datasets = datasets
        self.budgets = budgets
        self.audit = audit
        self.default_epsilon = default_epsilon
        self.default_delta = default_delta

    def budget(self, dataset_id: str) -> dict[str, Any]:
        return self.budgets.get(dataset_id) or {
            "dataset_id": dataset_id,
            "epsilon": self.default_epsilon,
            "delta": self.default_delta,
            "spent_epsilon": 0.0,
            "spent_delta": 0.0,
            "remaining_epsilon": self.default_epsilon,
            "remaining_delta": self.default_delta,
            "releases": 0,
        }

    def release(
        self,
        dataset_id: str,
        queries: Sequence[Mapping[str, Any]],
        *,
        seed: int | None = None,
        epsilon_total: float | None = None,
        delta_total: float | None = None,
        actor: str,
    ) -> dict[str, Any]:
        from learnloop.loop.privacy.dp import BudgetExceeded, DpQuery, PrivacyBudget, release

        frame = self.datasets.load(dataset_id)
        parsed = []
        for i, q in enumerate(queries):
            q = dict(q)
            if q.get("bounds") is not None:
                q["bounds"] = tuple(q["bounds"])
            if q.get("column") is not None and q["column"] not in frame.columns:
                raise InvalidInput("bad query", [Issue(f"queries.{i}.column", "no such column")])
            parsed.append(DpQuery(**q))

        def work(
            eps: float, delta: float, spent_e: float, spent_d: float
        ) -> tuple[Any, float, float]:
            budget = PrivacyBudget(eps, delta, spent_e, spent_d)
            try:
                answers = release(frame, parsed, budget, seed=seed)
            except BudgetExceeded as e:
                raise Conflict(f"privacy budget of {dataset_id} exceeded: {e}") from e
            except ValueError as e:
                raise InvalidInput("bad query", [Issue("queries", str(e))]) from e
            return answers, budget.spent_epsilon, budget.spent_delta

        answers, state = self.budgets.spend(
            dataset_id,
            epsilon_total or self.default_epsilon,
            self.default_delta if delta_total is None else delta_total,
            work,
        )
        body = {
            "dataset_id": dataset_id,
            "answers": [
                {
                    "query": {k: v for k, v in asdict(a.query).items() if v is not None},
                    "value": a.value,
                    "noise_scale": a.noise_scale,
                    "sensitivity": a.sensitivity,
                    "epsilon": a.epsilon,
                    "delta": a.delta,
                }
                for a in answers
            ],
            "budget": state,
        }
        self.audit.append(
            actor,
            "dataset.dp_release",
            f"dataset:{dataset_id}",
            {"queries": len(answers), "spent_epsilon": state["spent_epsilon"]},
        )
        return body


class SynthesisService:
    def __init__(self, datasets: DatasetService, families: FamilyCatalog) -> None:
        self.datasets = datasets
        self.families = families

    def run_job(self, ctx: JobContext) -> Mapping[str, Any]:
        from learnloop.loop.synthetic import (
            GaussianCopulaSynthesizer,
            augment_rare,
            fidelity_report,
        )

        p = dict(ctx.payload)
        source = self.datasets.get(str(p["dataset_id"]))
        real = self.datasets.load(source.id)
        params = dict(source.manifest.get("params") or {})
        family_cls = self.families.get(source.family)
        target = p.get("augment_target") or params.get("target")
        if target is not None and target not in real.columns:
            raise InvalidInput("bad target", [Issue("augment_target", f"no column {target!r}")])
        ctx.progress(0.05, f"fitting a generator on {len(real)} rows")
        subject = source.manifest.get("subject_column")
        meta = [c for c in ("prediction_id", "subject_id", subject) if c and c in real.columns]
        custom = getattr(family_cls, "synthesize", None)
        if custom is not None:
            synthetic = custom(real, params, p)
            method = f"{source.family}.synthesize"
        elif source.family in TABLE_FAMILIES:
            if p.get("augment_target"):
                augmented = augment_rare(
                    real.drop(columns=meta),
                    str(p["augment_target"]),
                    min_fraction=float(p.get("min_fraction", 0.2)),
                    seed=int(p.get("seed", 0)),
                    method=p.get("method", "copula"),
                )
                # the augmented training set: the real rows plus the generated rare-class rows,
                # told apart by the "_synthetic" column (never a feature)
                synthetic = augmented
                params["drop_columns"] = [*params.get("drop_columns", []), "_synthetic"]
                method = f"augment_rare({p.get('method', 'copula')})"
            else:
                gen = GaussianCopulaSynthesizer(seed=int(p.get("seed", 0))).fit(
                    real.drop(columns=meta)
                )
                ctx.progress(0.5, "sampling")
                synthetic = gen.sample(
                    int(p.get("rows") or len(real)), conditions=p.get("conditions")
                )
                method = "gaussian_copula"
        else:
            raise Conflict(f"family {source.family!r} has no synthetic-data generator")
        ctx.progress(0.7, f"{len(synthetic)} rows; measuring fidelity")
        real_part = real.drop(columns=meta)
        generated = (
            synthetic[synthetic["_synthetic"]].drop(columns="_synthetic")
            if "_synthetic" in synthetic.columns
            else synthetic
        )
        report = fidelity_report(real_part, generated, target=target, seed=int(p.get("seed", 0)))
        report["generated_rows"] = len(generated)
        ctx.progress(0.9, "writing the snapshot")
        synthetic = pd.DataFrame(synthetic).reset_index(drop=True)
        params.pop("split_column", None)
        if "drop_columns" in params:
            params["drop_columns"] = [c for c in params["drop_columns"] if c in synthetic.columns]
        record = self.datasets.import_frame(
            synthetic,
            family=source.family,
            params=params or None,
            name=str(p.get("name") or f"{source.name}-synthetic"),
            source=f"synthetic:{source.id}",
            actor=ctx.job.submitted_by or "job",
            synthetic=True,
            extra_manifest={
                "lineage": {"source": source.id, "method": method, "seed": p.get("seed", 0)},
                "fidelity": report,
            },
        )
        return {"dataset_id": record.id, "rows": record.rows, "method": method, "fidelity": report}

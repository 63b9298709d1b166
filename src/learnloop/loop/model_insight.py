"""Explanations and fairness of a served version, computed on the loaded model.

Both run on the version as the serving engine loads it (``ModelCache``), never through
``predict`` — so nothing lands in the prediction ledger.

Fairness joins the **sensitive attributes** at evaluation time: they live in their own store
(admin-only, ``PUT /v1/sensitive-attributes``), keyed by subject id, and are joined to the
evaluation snapshot through its declared subject column. Models never see them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from learnloop.core.datasets import DatasetService
from learnloop.core.errors import InvalidInput, Issue
from learnloop.core.registry import RegistryService
from learnloop.core.serving import ServingEngine
from learnloop.storage.sql.sensitive import SqlSensitiveStore


class ModelInsight:
    def __init__(
        self,
        serving: ServingEngine,
        registry: RegistryService,
        datasets: DatasetService,
        sensitive: SqlSensitiveStore,
    ) -> None:
        self.serving = serving
        self.registry = registry
        self.datasets = datasets
        self.sensitive = sensitive

    def _version(self, model: str, version: str | None, alias: str | None) -> str:
        if version is not None:
            self.registry.get_version(model, version)
            return version
        return self.registry.resolve(model, alias or "champion")

    def instance(self, model: str, version: str | None, alias: str | None) -> tuple[str, Any]:
        v = self._version(model, version, alias)
        return v, self.serving.models.get(model, v).instance

    def explain(
        self,
        model: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        method: str = "shap",
        version: str | None = None,
        alias: str | None = None,
        seed: int = 0,
    ) -> dict[str, Any]:
        from learnloop.loop.explain import explain_lime, explain_shap

        v, family = self.instance(model, version, alias)
        own = getattr(family, "explain_inputs", None)
        if own is not None:  # the family explains in its own terms (e.g. past attempts)
            return {"model": model, "version": v, **own(family.validate_inputs(list(rows)))}
        if method == "attribution":
            raise InvalidInput("no attribution method", [Issue("method", "use shap or lime")])
        if method == "shap":
            body = explain_shap(family, list(rows), seed=seed)
        else:
            record = self.registry.get_version(model, v)
            if not record.dataset_id:
                raise InvalidInput("LIME needs training data", [Issue("method", "use shap")])
            training = self.datasets.load(record.dataset_id)
            body = explain_lime(family, list(rows), training_frame=training, seed=seed)
        return {"model": model, "version": v, **body}

    def importance(
        self, model: str, *, version: str | None = None, alias: str | None = None, rows: int = 1000
    ) -> dict[str, Any]:
        from learnloop.loop.explain import global_importance

        v, family = self.instance(model, version, alias)
        record = self.registry.get_version(model, v)
        if not record.dataset_id:
            raise InvalidInput("no training data recorded", [Issue("version", v)])
        frame = self.datasets.load(record.dataset_id)
        return {"model": model, "version": v, **global_importance(family, frame, max_rows=rows)}

    def bias(
        self,
        model: str,
        dataset_id: str,
        attributes: Sequence[str],
        *,
        version: str | None = None,
        alias: str | None = None,
        positive: Any = 1,
        bounds: Mapping[str, float] | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        from learnloop.loop.fairness import FairnessConfig, check_bounds, fairness_report

        v, family = self.instance(model, version, alias)
        record = self.registry.get_version(model, v)
        target = str(record.params.get("target", ""))
        snapshot = self.datasets.get(dataset_id)
        subject_column = snapshot.manifest.get("subject_column")
        if not subject_column:
            raise InvalidInput(
                "the dataset declares no subject column",
                [Issue("dataset_id", "sensitive attributes are joined by subject id")],
            )
        frame = self.datasets.load(dataset_id)
        if target not in frame.columns:
            raise InvalidInput("no labels", [Issue("dataset_id", f"no column {target!r}")])
        # missing subject ids stay missing (pandas 3 keeps NaN through astype(str))
        subjects = [None if pd.isna(v) else str(v) for v in frame[subject_column].tolist()]
        found = self.sensitive.get_many([s for s in subjects if s is not None])
        sensitive = pd.DataFrame(
            [{a: found.get(s, {}).get(a) if s else None for a in attributes} for s in subjects]
        )
        missing = [a for a in attributes if sensitive[a].isna().all()]
        if missing:
            raise InvalidInput(
                "no sensitive values",
                [Issue(f"attributes.{a}", "no subject of the dataset has it") for a in missing],
            )
        score_table = getattr(family, "predict_table", None)
        if score_table is not None:
            # sequence models predict each row from the rows before it (same subject)
            scored = score_table(frame)
            rows = scored["_row"].to_numpy()
            frame = frame.iloc[rows].reset_index(drop=True)
            sensitive = sensitive.iloc[rows].reset_index(drop=True)
            subjects = [subjects[i] for i in rows]
            predicted = (scored["probability"].to_numpy() >= 0.5).astype(int).tolist()
        else:
            inputs = frame.drop(columns=[target]).to_dict(orient="records")
            outputs = family.predict(family.validate_inputs(inputs))
            predicted = [o.model_dump(mode="json").get("prediction") for o in outputs]
        cast = type(positive)
        y_true = [cast(x) for x in frame[target].tolist()]
        y_pred = [cast(x) for x in predicted]
        report = fairness_report(
            y_true, y_pred, sensitive, positive=positive, config=FairnessConfig(**(config or {}))
        )
        body = {"model": model, "version": v, "dataset_id": dataset_id, **report}
        body["joined"] = {
            "rows": len(frame),
            "with_attributes": sum(1 for s in subjects if s in found),
        }
        if bounds:
            verdicts = check_bounds(report, bounds)
            body["bounds"] = verdicts
            body["passed"] = all(bool(x["passed"]) for x in verdicts)
        return body

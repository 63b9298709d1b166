"""Training snapshots built from the loop: labelled examples (ledger ⋈ feedback) → dataset.

Steps, each recorded in the snapshot's manifest:

1. **Examples** — the model's predictions with a label from feedback (``label``,
   ``correction`` or a thumbs verdict; :mod:`learnloop.core.labels`), inputs as columns, the
   label under the target name the serving version was trained with.
2. **Time-based split** — sorted by prediction time; predictions before the cutoff (given, or
   the ``1 - valid_fraction`` quantile) are ``train``, the rest ``valid``, in a ``split``
   column that training uses as its validation set (``split_column``), so the model is
   validated on the future it has not seen (no leakage through random splits).
3. **Privacy** — columns to drop, then k-anonymity / l-diversity by generalizing the declared
   quasi-identifiers and suppressing what is left over
   (:func:`learnloop.loop.privacy.anonymity.anonymize`).
4. **Validation report** — schema, missing values, numeric ranges, duplicate rows, label
   balance per split, and train/serve skew: each feature's distribution in the served inputs
   against the data the serving version was trained on (PSI for numbers, total variation for
   categories; > 0.2 is flagged).
5. **Lineage** — ``lineage.parquet`` beside the data lists every prediction id with the
   feedback event ids that labelled it; the manifest keeps the window, counts and transforms.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ConfigDict, Field

from learnloop.core.datasets import DatasetService
from learnloop.core.errors import InvalidInput, Issue
from learnloop.core.identifiers import ModelName, Text
from learnloop.core.inputs import ClientModel
from learnloop.core.labels import LabelledExample
from learnloop.core.records import DatasetRecord
from learnloop.core.registry import RegistryService
from learnloop.core.times import Timestamp
from learnloop.loop.drift import sample_psi
from learnloop.loop.feedback import FeedbackService

META = ["prediction_id", "subject_id", "predicted_at"]
SPLIT = "split"
SKEW_FLAG = 0.2


class PrivacySpec(ClientModel):
    model_config = ConfigDict(extra="forbid")

    drop_columns: list[Text] = Field(
        default_factory=list, max_length=10_000, description="Never stored."
    )
    quasi_identifiers: list[Text] = Field(
        default_factory=list,
        max_length=1_000,
        description="Columns generalized for k-anonymity/l-diversity.",
    )
    k: int | None = Field(
        None, ge=2, le=1_000_000, description="Every QI combination shared by ≥ k rows."
    )
    l: int | None = Field(  # noqa: E741
        None, ge=2, le=1_000_000, description="Each QI class holds ≥ l distinct sensitive values."
    )
    sensitive: list[Text] = Field(
        default_factory=list, max_length=1_000, description="Sensitive columns (l)."
    )
    max_suppression: float = Field(0.05, ge=0, le=0.5, description="Most rows suppressed.")


class LoopDatasetRequest(ClientModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelName
    name: Text | None = None
    since: Timestamp | None = Field(None, description="Predictions made from this time on.")
    until: Timestamp | None = Field(None, description="Predictions made before this time.")
    cutoff: Timestamp | None = Field(
        None, description="Split time: earlier predictions train, later ones validate."
    )
    valid_fraction: float = Field(0.2, gt=0, lt=0.9, description="Used when no cutoff.")
    label_sources: list[Text] = Field(
        max_length=16,
        default_factory=lambda: ["label", "correction", "thumbs"],
        description="Which feedback may label an example.",
    )
    privacy: PrivacySpec | None = None
    limit: int = Field(1_000_000, ge=1, le=100_000_000)


def examples_table(examples: list[LabelledExample], target: str) -> pd.DataFrame:
    rows = []
    for ex in examples:
        p = ex.prediction
        # nested values (lists, objects) are kept as JSON text: tables need hashable cells
        row: dict[str, Any] = {
            k: json.dumps(v, sort_keys=True) if isinstance(v, list | dict) else v
            for k, v in (p.inputs or {}).items()
        }
        row.update(
            {
                "prediction_id": p.id,
                "subject_id": p.subject_id,
                "predicted_at": p.created_at,
                target: ex.label,
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def time_split(
    frame: pd.DataFrame, cutoff: datetime | None, valid_fraction: float
) -> tuple[pd.DataFrame, datetime]:
    frame = frame.sort_values(["predicted_at", "prediction_id"]).reset_index(drop=True)
    times = pd.to_datetime(frame["predicted_at"], utc=True)
    if cutoff is None:
        position = int(np.floor(len(frame) * (1 - valid_fraction)))
        position = min(max(position, 1), len(frame) - 1)
        cutoff = times.iloc[position].to_pydatetime()
    frame[SPLIT] = np.where(times < pd.Timestamp(cutoff), "train", "valid")
    return frame, cutoff


def skew(reference: pd.DataFrame, served: pd.DataFrame, features: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in features:
        if col not in reference.columns or col not in served.columns:
            continue
        ref, cur = reference[col].dropna(), served[col].dropna()
        if not len(ref) or not len(cur):
            continue
        if pd.api.types.is_numeric_dtype(ref) and pd.api.types.is_numeric_dtype(cur):
            score = sample_psi(ref.to_numpy(float), cur.to_numpy(float))
            out[col] = {"metric": "psi", "value": round(score, 4), "flag": score > SKEW_FLAG}
        else:
            p = ref.astype(str).value_counts(normalize=True)
            q = cur.astype(str).value_counts(normalize=True)
            tvd = float(0.5 * p.subtract(q, fill_value=0).abs().sum())
            out[col] = {"metric": "tvd", "value": round(tvd, 4), "flag": tvd > SKEW_FLAG}
    return out


def validation_report(
    frame: pd.DataFrame, target: str, features: list[str], reference: pd.DataFrame | None
) -> dict[str, Any]:
    columns = []
    for col in frame.columns:
        s = frame[col]
        entry: dict[str, Any] = {
            "name": str(col),
            "dtype": str(s.dtype),
            "missing": int(s.isna().sum()),
            "missing_fraction": round(float(s.isna().mean()), 6) if len(s) else 0.0,
        }
        if (
            pd.api.types.is_numeric_dtype(s)
            and not pd.api.types.is_bool_dtype(s)
            and s.notna().any()
        ):
            entry.update(min=float(s.min()), max=float(s.max()), mean=round(float(s.mean()), 6))
        else:
            entry["distinct"] = int(s.nunique())
        columns.append(entry)
    content = [c for c in frame.columns if c not in (*META, SPLIT)]
    balance = {
        split: {str(k): int(v) for k, v in group[target].astype(str).value_counts().items()}
        for split, group in frame.groupby(SPLIT)
    }
    report: dict[str, Any] = {
        "rows": len(frame),
        "columns": columns,
        "duplicates": int(frame.duplicated(subset=content).sum()),
        "label_balance": balance,
        "split": {k: int(v) for k, v in frame[SPLIT].value_counts().items()},
    }
    if reference is not None:
        drift = skew(reference, frame, features)
        report["train_serve_skew"] = drift
        report["skewed_features"] = sorted(k for k, v in drift.items() if v["flag"])
    return report


class LoopDatasetBuilder:
    def __init__(
        self, feedback: FeedbackService, datasets: DatasetService, registry: RegistryService
    ) -> None:
        self.feedback = feedback
        self.datasets = datasets
        self.registry = registry

    def build(
        self, request: LoopDatasetRequest, *, actor: str
    ) -> tuple[DatasetRecord, dict[str, Any]]:
        model = self.registry.get_model(request.model)
        labelled = [
            e
            for e in self.feedback.labelled(
                request.model, since=request.since, until=request.until, limit=request.limit
            )
            if e.label_source in request.label_sources and e.label is not None
        ]
        # a training row needs one value as its label: a list or an object sent as a label
        # (the feedback API takes any JSON) is left out and counted, never a crash
        examples = [e for e in labelled if isinstance(e.label, str | int | float | bool)]
        not_scalar = len(labelled) - len(examples)
        if len(examples) < 2:
            raise InvalidInput(
                "not enough labelled examples",
                [Issue("model", f"{len(examples)} labelled predictions of {request.model!r}")],
            )
        versions = sorted({e.prediction.version for e in examples}, key=int)
        served_version = self.registry.get_version(request.model, versions[-1])
        target = str(served_version.params.get("target", "label"))
        frame = examples_table(examples, target)
        frame, cutoff = time_split(frame, request.cutoff, request.valid_fraction)
        if frame[SPLIT].nunique() < 2:
            raise InvalidInput(
                "time split leaves one side empty",
                [Issue("cutoff", f"{cutoff.isoformat()} puts every example on one side")],
            )
        transforms: list[dict[str, Any]] = [
            {
                "step": "time_split",
                "cutoff": cutoff.isoformat(),
                **frame[SPLIT].value_counts().to_dict(),
            }
        ]
        if not_scalar:
            transforms.append({"step": "labels", "left_out_not_a_single_value": not_scalar})
        # train/serve skew compares what was served, before privacy transforms change it
        features = [c for c in frame.columns if c not in (*META, SPLIT, target)]
        reference = self._reference(served_version.dataset_id)
        served_skew = skew(reference, frame, features) if reference is not None else None
        privacy_report: dict[str, Any] | None = None
        if request.privacy is not None:
            frame, privacy_report = self._privacy(frame, request.privacy, target)
            transforms.append(
                {"step": "privacy", **{k: v for k, v in privacy_report.items() if k != "details"}}
            )
        report = validation_report(frame, target, [], None)
        if served_skew is not None:
            report["train_serve_skew"] = served_skew
            report["skewed_features"] = sorted(k for k, v in served_skew.items() if v["flag"])
        by_prediction: dict[str, list[str]] = {}
        for e in examples:
            by_prediction[e.prediction.id] = [e.label_source or ""]
        lineage = frame[["prediction_id", "subject_id"]].copy()
        lineage["label_source"] = [by_prediction.get(p, [""])[0] for p in lineage["prediction_id"]]
        params = {
            **{k: v for k, v in served_version.params.items() if k in ("target", "task")},
            "target": target,
            "split_column": SPLIT,
            "drop_columns": [
                c
                for c in {*served_version.params.get("drop_columns", []), *META}
                if c in frame.columns
            ],
        }
        events = sum(e.events for e in examples)
        record = self.datasets.import_frame(
            frame,
            family=model.family,
            params=params,
            name=request.name or f"{request.model}-feedback",
            source=f"feedback:{request.model}",
            actor=actor,
            subject_column="subject_id",
            extra_manifest={
                "lineage": {
                    "source": "ledger ⋈ feedback",
                    "model": request.model,
                    "versions": versions,
                    "since": request.since.isoformat() if request.since else None,
                    "until": request.until.isoformat() if request.until else None,
                    "predictions": len(examples),
                    "feedback_events": events,
                    "transforms": transforms,
                    "file": "lineage.parquet",
                },
                "validation": report,
                "privacy": privacy_report,
            },
            extra_files={"lineage": lineage},
        )
        return record, report

    def _reference(self, dataset_id: str | None) -> pd.DataFrame | None:
        if not dataset_id:
            return None
        try:
            return self.datasets.load(dataset_id)
        except Exception:  # erased or missing: no skew report, not a failure
            return None

    def _privacy(
        self, frame: pd.DataFrame, spec: PrivacySpec, target: str
    ) -> tuple[pd.DataFrame, dict[str, Any]]:
        from learnloop.loop.privacy.anonymity import anonymize

        issues = [
            Issue(f"privacy.{field}", f"no column {c!r}")
            for field, cols in (
                ("drop_columns", spec.drop_columns),
                ("quasi_identifiers", spec.quasi_identifiers),
                ("sensitive", spec.sensitive),
            )
            for c in cols
            if c not in frame.columns
        ]
        protected = {*META, SPLIT, target} & set(spec.drop_columns)
        issues += [Issue("privacy.drop_columns", f"{c!r} cannot be dropped") for c in protected]
        if spec.k is None and spec.l is not None:
            issues.append(Issue("privacy.k", "l-diversity needs k as well"))
        if spec.k is not None and not spec.quasi_identifiers:
            issues.append(Issue("privacy.quasi_identifiers", "k-anonymity needs them"))
        if spec.l is not None and not spec.sensitive:
            issues.append(Issue("privacy.sensitive", "l-diversity needs a sensitive column"))
        if issues:
            raise InvalidInput("bad privacy spec", issues)
        report: dict[str, Any] = {"dropped": list(spec.drop_columns)}
        frame = frame.drop(columns=spec.drop_columns)
        if spec.k is not None:
            try:
                result = anonymize(
                    frame,
                    {q: "auto" for q in spec.quasi_identifiers},
                    k=spec.k,
                    l=spec.l,
                    sensitive=spec.sensitive,
                    max_suppression=spec.max_suppression,
                )
            except ValueError as e:
                raise InvalidInput("cannot anonymize", [Issue("privacy", str(e))]) from e
            frame = result.frame.reset_index(drop=True)
            report.update(
                k=result.k,
                l=result.l,
                levels=result.levels,
                suppressed=result.suppressed,
                quasi_identifiers=list(spec.quasi_identifiers),
                sensitive=list(spec.sensitive),
                details=result.report,
            )
        return frame, report

"""Dataset snapshots: validated, immutable, content-hashed Parquet files with a manifest.

A snapshot's id is derived from its family, content and params (``ds-`` + 16 hex digits of a
SHA-256 over the family name, the content hash — column names, dtypes and pandas' row hashes —
and the params as canonical JSON, when there are any), so importing the same table twice for a
family with the same params gives the same snapshot, and with other params (another target)
another snapshot. Files are written to a
temporary folder, fsynced, renamed into place and made read-only; the catalog row is added
last, so a crash never leaves a half snapshot visible.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from learnloop.core.catalog import FamilyCatalog
from learnloop.core.errors import Conflict, InvalidInput, Issue, NotFound, SchemaMismatch
from learnloop.core.records import DatasetRecord
from learnloop.core.stores import AuditLog, DatasetCatalog

# manifest keys that import_frame writes itself (the rest is carried over to successors)
_OWN_KEYS = frozenset(
    {
        "id",
        "family",
        "name",
        "rows",
        "columns",
        "sha256",
        "source",
        "synthetic",
        "params",
        "created_by",
        "subject_column",
    }
)
READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".tsv": "tsv"}


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV/TSV (optionally ``.gz``, BOM tolerated) or Parquet file."""
    path = Path(path)
    if not path.exists():
        raise InvalidInput("cannot read data", [Issue("path", f"{path} does not exist")])
    name = path.name.lower().removesuffix(".gz")
    kind = READERS.get(Path(name).suffix)
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        if kind in ("csv", "tsv"):
            return pd.read_csv(path, sep="\t" if kind == "tsv" else ",", encoding="utf-8-sig")
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise InvalidInput("cannot read data", [Issue("path", f"{path}: {e}")]) from e
    raise InvalidInput(
        "cannot read data", [Issue("path", f"{path}: use .csv, .tsv, .parquet (or .csv.gz)")]
    )


def content_hash(frame: pd.DataFrame) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def snapshot_id(family: str, digest: str, params: Mapping[str, Any] | None) -> str:
    """``ds-`` + 16 hex digits naming (family, content, params): the same table imported for
    another family, or with other params (another target), is another snapshot."""
    key = f"{family}:{digest}"
    if params:
        key += ":" + json.dumps(dict(params), sort_keys=True, separators=(",", ":"), default=str)
    return "ds-" + hashlib.sha256(key.encode()).hexdigest()[:16]


class DatasetService:
    """Import, list and load dataset snapshots."""

    def __init__(
        self, catalog: DatasetCatalog, families: FamilyCatalog, root: Path, audit: AuditLog
    ) -> None:
        self.catalog = catalog
        self.families = families
        self.root = root
        self.audit = audit

    def import_file(
        self,
        path: Path,
        *,
        family: str,
        params: Mapping[str, Any] | None = None,
        name: str | None = None,
        actor: str,
    ) -> DatasetRecord:
        frame = read_table(path)
        return self.import_frame(
            frame,
            family=family,
            params=params,
            name=name or Path(path).name,
            source=str(Path(path).resolve()),
            actor=actor,
        )

    def import_frame(
        self,
        frame: pd.DataFrame,
        *,
        family: str,
        params: Mapping[str, Any] | None = None,
        name: str,
        source: str,
        actor: str,
        synthetic: bool = False,
        subject_column: str | None = None,
        extra_manifest: Mapping[str, Any] | None = None,
        extra_files: Mapping[str, pd.DataFrame] | None = None,
    ) -> DatasetRecord:
        """Validate ``frame`` for ``family`` and store it as a snapshot (or return the snapshot
        with the same content). ``subject_column`` names the column that holds subject ids (the
        unit of erasure); ``extra_manifest`` adds keys (lineage, reports) to the manifest;
        ``extra_files`` are written beside the data as Parquet (e.g. ``lineage``)."""
        family_cls = self.families.get(family)
        if subject_column is not None and subject_column not in frame.columns:
            raise InvalidInput(
                "bad subject column", [Issue("subject_column", f"no column {subject_column!r}")]
            )
        parsed = family_cls.parse_params(params) if params else None
        issues = family_cls.validate_frame(frame, parsed)
        if issues:
            raise SchemaMismatch(f"data does not fit family {family!r}", issues)
        frame = frame.reset_index(drop=True)
        digest = content_hash(frame)
        dataset_id = snapshot_id(family, digest, params)
        existing = self.catalog.get(dataset_id)
        if existing is not None:
            return existing
        folder = self.root / dataset_id
        schema = tuple((str(c), str(t)) for c, t in frame.dtypes.items())
        manifest = {
            "id": dataset_id,
            "family": family,
            "name": name,
            "rows": len(frame),
            "columns": [{"name": c, "dtype": t} for c, t in schema],
            "sha256": digest,
            "source": source,
            "synthetic": synthetic,
            "params": dict(params or {}),
            "created_by": actor,
            "subject_column": subject_column,
            **dict(extra_manifest or {}),
        }
        self._write(folder, frame, manifest, extra_files or {})
        record = self.catalog.add(
            DatasetRecord(
                id=dataset_id,
                family=family,
                name=name,
                rows=len(frame),
                content_hash=digest,
                source=source,
                path=str(folder / "data.parquet"),
                schema=schema,
                created_at=datetime.now(UTC),
                synthetic=synthetic,
                manifest=manifest,
            )
        )
        self.audit.append(
            actor,
            "dataset.create",
            f"dataset:{dataset_id}",
            {"name": name, "rows": len(frame), "family": family},
        )
        return record

    def get(self, dataset_id: str) -> DatasetRecord:
        record = self.catalog.get(dataset_id)
        if record is None:
            raise NotFound("dataset", dataset_id)
        return record

    def list(self, family: str | None = None) -> list[DatasetRecord]:
        return self.catalog.list(family)

    def load(self, dataset_id: str) -> pd.DataFrame:
        record = self.get(dataset_id)
        erased = record.manifest.get("erased")
        if erased:
            successor = erased.get("superseded_by")
            hint = f"; use {successor}" if successor else ""
            raise Conflict(f"dataset {dataset_id} was erased (data-subject erasure){hint}")
        return pd.read_parquet(record.path)

    def lineage(self, dataset_id: str) -> pd.DataFrame | None:
        path = Path(self.get(dataset_id).path).parent / "lineage.parquet"
        return pd.read_parquet(path) if path.exists() else None

    # -- erasure ----------------------------------------------------------------------------

    def subject_rows(self, subject_id: str) -> builtins.list[tuple[DatasetRecord, pd.DataFrame]]:
        """Live snapshots with a declared subject column that hold ``subject_id``, with the
        subject's rows."""
        found = []
        for record in self.catalog.list(limit=1_000_000):
            column = record.manifest.get("subject_column")
            if not column or record.manifest.get("erased") or not Path(record.path).exists():
                continue
            ids = pd.read_parquet(record.path, columns=[column])[column]
            if (ids.astype(str) == subject_id).any():
                frame = pd.read_parquet(record.path)
                found.append((record, frame[frame[column].astype(str) == subject_id]))
        return found

    def erase_subject(
        self, subject_id: str, *, actor: str, tombstone: str
    ) -> builtins.list[dict[str, Any]]:
        """For every snapshot holding the subject: write a new snapshot without the subject's
        rows (same family, params and subject column; lineage points back), mark the old one
        erased and superseded, and delete the old one's data files. Returns what was done."""
        done = []
        for record, rows in self.subject_rows(subject_id):
            column = str(record.manifest["subject_column"])
            frame = pd.read_parquet(record.path)
            keep = frame[frame[column].astype(str) != subject_id].reset_index(drop=True)
            successor: str | None = None
            extra = {
                k: v for k, v in record.manifest.items() if k not in _OWN_KEYS and k != "erased"
            }
            extra["erasure_of"] = {"dataset": record.id, "tombstone": tombstone}
            files: dict[str, pd.DataFrame] = {}
            lineage = self.lineage(record.id)
            if lineage is not None and "subject_id" in lineage.columns:
                files["lineage"] = lineage[lineage["subject_id"].astype(str) != subject_id]
            try:
                if len(keep):
                    successor = self.import_frame(
                        keep,
                        family=record.family,
                        params=record.manifest.get("params") or None,
                        name=record.name,
                        source=f"erasure of {record.id}",
                        actor=actor,
                        synthetic=record.synthetic,
                        subject_column=column,
                        extra_manifest=extra,
                        extra_files=files,
                    ).id
            except InvalidInput as e:  # what is left no longer fits the family: no successor
                extra["erasure_of"]["note"] = e.message
            marked = {
                **record.manifest,
                "erased": {"tombstone": tombstone, "superseded_by": successor, "rows": len(rows)},
            }
            self.catalog.update_manifest(record.id, marked)
            folder = Path(record.path).parent
            for f in folder.iterdir():
                if f.name != "manifest.json":
                    f.chmod(0o644)
                    f.unlink()
            done.append({"dataset": record.id, "rows": len(rows), "superseded_by": successor})
            self.audit.append(
                actor,
                "dataset.erase_subject",
                f"dataset:{record.id}",
                {"tombstone": tombstone, "rows": len(rows), "superseded_by": successor},
            )
        return done

    def _write(
        self,
        folder: Path,
        frame: pd.DataFrame,
        manifest: dict[str, Any],
        extra_files: Mapping[str, pd.DataFrame] | None = None,
    ) -> None:
        if (folder / "manifest.json").exists():
            return  # same content written before (catalog row lost with a crash): reuse it
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=self.root))
        try:
            frame.to_parquet(tmp / "data.parquet", index=False)
            for stem, extra in (extra_files or {}).items():
                extra.to_parquet(tmp / f"{stem}.parquet", index=False)
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
            for f in tmp.iterdir():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
                f.chmod(0o444)
            shutil.rmtree(folder, ignore_errors=True)
            tmp.rename(folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

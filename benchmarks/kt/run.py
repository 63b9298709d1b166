"""Knowledge-tracing benchmark: learnloop's DKT, attentive model and BKT beside pyBKT, one run.

    .venv/bin/python benchmarks/kt/run.py                   # every dataset and model
    .venv/bin/python benchmarks/kt/run.py --quick           # DKVMN split, 3 epochs, fold 1 only
    .venv/bin/python benchmarks/kt/run.py --datasets dkvmn,synthetic --models dkt,bkt

Every learnloop run is the command users run, ``learnloop bench kt … --json OUT``, in its own
process; pyBKT runs in its own virtualenv (``benchmarks/kt/peers.sh``) on the same files.

Datasets (``../shared/datasets/knowledge-tracing``; see its README for the splits):

* ``dkvmn``: ASSISTments 2009 (110 skills), DKVMN's split: train1 → valid1 (early stopping) → test.
* ``akt``: ASSISTments 2009 with problem ids, AKT's five folds: for fold k, test = chunk k,
  validation = chunk k+1, training = the other three chunks plus the extra training student of
  the upstream files; the mean over folds is reported. The per-skill copies of one attempt
  (consecutive rows with the same problem and answer, 16 % of rows) are merged into one attempt.
* ``akt-rows``: the same folds scored row by row as in the files, the AKT paper's protocol: a
  copy's answer is visible when its sibling is predicted (label leakage). It shows how much of
  the published figures the leak makes.
* ``synthetic5``: DKT's Synthetic-5 v0 files (train1 → valid1 → test).
* ``synthetic``: learnloop's simulator at the Synthetic-5 shape (4,000 learners × 50 items,
  5 concepts), with the Bayes oracle's AUC on the same test attempts (its ground truth is
  known; the shipped files carry none).

Writes ``benchmarks/results/kt.json``: one entry per dataset × model with AUC, accuracy and train
seconds (plus the per-fold entries of ``akt``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "datasets" / "knowledge-tracing"
WORK = ROOT / "benchmarks" / ".work" / "kt"
PYBKT = ROOT / "benchmarks" / ".peers" / "pybkt" / "bin" / "python"
LEARNLOOP = ROOT / ".venv" / "bin" / "learnloop"
OUT = ROOT / "benchmarks" / "results" / "kt.json"
MODELS = ("dkt", "attentive", "ensemble", "bkt", "pybkt", "pybkt-forgets")
# the ensemble costs four trainings: on the five AKT folds only with --akt-ensemble
SKIPPED = {("akt", "ensemble"), ("akt-rows", "ensemble")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--datasets", default="dkvmn,akt,akt-rows,synthetic5,synthetic")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--folds", default="1,2,3,4,5", help="AKT folds to run")
    p.add_argument("--quick", action="store_true", help="dkvmn only, 3 epochs, no pyBKT seeds")
    p.add_argument("--akt-ensemble", action="store_true", help="run the ensemble on AKT folds")
    p.add_argument(
        "--merge", action="store_true", help="replace these runs in an existing --out, keep others"
    )
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--out", type=Path, default=OUT)
    return p.parse_args(argv)


def splits(data: Path, dataset: str, folds: list[int]) -> list[dict[str, Any]]:
    """(name, format, train files, valid, test) of each run of ``dataset``."""
    if dataset == "dkvmn":
        d = data / "dkvmn-assist2009"
        return [
            {
                "dataset": "dkvmn-assist2009",
                "format": "dkvmn",
                "train": [d / "assist2009_updated_train1.csv"],
                "valid": d / "assist2009_updated_valid1.csv",
                "test": d / "assist2009_updated_test.csv",
            }
        ]
    if dataset == "synthetic5":
        d = data / "dkvmn-synthetic5"
        return [
            {
                "dataset": "synthetic5-v0",
                "format": "dkvmn",
                "train": [d / "naive_c5_q50_s4000_v0_train1.csv"],
                "valid": d / "naive_c5_q50_s4000_v0_valid1.csv",
                "test": d / "naive_c5_q50_s4000_v0_test.csv",
            }
        ]
    if dataset in ("akt", "akt-rows"):
        d = data / "akt-assist2009-pid"
        rows = dataset == "akt-rows"
        lines = [x for x in (d / "assist2009_pid_train1.csv").read_text().splitlines() if x.strip()]
        extra = "\n".join(lines[-4:]) + "\n"
        assert lines[-4].startswith("1214,"), "the extra training student is not where expected"
        WORK.mkdir(parents=True, exist_ok=True)
        out = []
        for k in folds:
            others = [j for j in range(1, 6) if j not in (k, k % 5 + 1)]
            train = WORK / f"akt_fold{k}_train.csv"
            text = "".join((d / f"assist2009_pid_test{j}.csv").read_text() for j in others)
            train.write_text(text.rstrip("\n") + "\n" + extra)
            out.append(
                {
                    "dataset": "akt-assist2009-pid" + (" (rows, leaky)" if rows else ""),
                    "siblings": "keep" if rows else "merge",
                    "fold": k,
                    "format": "akt",
                    "train": [train],
                    "valid": d / f"assist2009_pid_test{k % 5 + 1}.csv",
                    "test": d / f"assist2009_pid_test{k}.csv",
                }
            )
        return out
    if dataset == "synthetic":
        return [{"dataset": "synthetic-oracle", "format": "synthetic"}]
    raise SystemExit(f"unknown dataset {dataset!r}")


def run_learnloop(split: dict[str, Any], model: str, quick: bool) -> dict[str, Any]:
    WORK.mkdir(parents=True, exist_ok=True)
    tag = f"{split['dataset']}-{split.get('fold', 0)}-{model}".replace(" ", "_")
    tag = tag.replace("(", "").replace(")", "").replace(",", "")
    out = WORK / f"{tag}.json"
    cmd = [str(LEARNLOOP), "bench", "kt", "--model", model, "--json", str(out)]
    if split.get("siblings") == "keep":
        cmd += ["--siblings", "keep"]
    if split["format"] == "synthetic":
        cmd.append("--use-synthetic")
    else:
        cmd += ["--format", split["format"], "--test", str(split["test"])]
        for t in split["train"]:
            cmd += ["--train", str(t)]
        if split.get("valid"):
            cmd += ["--valid", str(split["valid"])]
    if quick and model != "bkt":
        cmd += ["--epochs", "3"]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"})
    wall = time.monotonic() - started
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"{tag}: learnloop bench kt failed ({proc.returncode})")
    result = json.loads(out.read_text())
    result["wall_seconds"] = round(wall, 1)
    result["command"] = " ".join(
        Path(c).name if c == str(LEARNLOOP) else os.path.relpath(c, ROOT) if "/" in c else c
        for c in cmd
    )
    return result


def run_pybkt(split: dict[str, Any], forgets: bool, quick: bool) -> dict[str, Any] | None:
    if split["format"] == "synthetic":
        return None  # the simulator's files exist only inside learnloop's run
    if not PYBKT.exists():
        raise SystemExit("pyBKT's virtualenv is missing: run benchmarks/kt/peers.sh")
    WORK.mkdir(parents=True, exist_ok=True)
    tag = f"{split['dataset']}-{split.get('fold', 0)}-pybkt{'-forgets' if forgets else ''}"
    tag = tag.replace(" ", "_").replace("(", "").replace(")", "").replace(",", "")
    out = WORK / f"{tag}.json"
    # pyBKT has no early stopping: it trains on train and valid together (DKVMN's train.csv)
    trains = [*split["train"], *([split["valid"]] if split.get("valid") else [])]
    cmd = [str(PYBKT), str(ROOT / "benchmarks" / "kt" / "pybkt_runner.py"), "--format",
           split["format"], "--test", str(split["test"]), "--json", str(out), "--train",
           *map(str, trains), "--seeds", *(["0"] if quick else ["0", "1", "2"])]  # fmt: skip
    if forgets:
        cmd.append("--forgets")
    if split.get("siblings") == "keep":
        cmd += ["--siblings", "keep"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"{tag}: pyBKT failed ({proc.returncode})")
    return json.loads(out.read_text())


def entry(split: dict[str, Any], model: str, r: dict[str, Any]) -> dict[str, Any]:
    e: dict[str, Any] = {
        "dataset": split["dataset"],
        "fold": split.get("fold"),
        "model": model,
        "tool": "pyBKT" if model.startswith("pybkt") else "learnloop",
        "auc": r.get("auc"),
        "accuracy": r.get("accuracy"),
        "train_seconds": r.get("train_seconds"),
    }
    if "oracle" in r:
        e["oracle_auc"] = r["oracle"]["auc"]
        e["omniscient_auc"] = r["omniscient"]["auc"]
        e["gap_to_oracle"] = r["gap_to_oracle"]
    if "fit" in r:
        e["best_epoch"] = r["fit"].get("best_epoch")
        e["valid_auc"] = r.get("valid", {}).get("auc")
        e["command"] = r.get("command")
    if "rows" in r:
        e["test_rows"] = r["rows"]["test"]
    if "scored_rows" in r:
        e["test_rows"] = r["scored_rows"]
    if "dropped_rows" in r:
        e["dropped_rows"] = r["dropped_rows"]
    return e


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    datasets = ["dkvmn"] if args.quick else args.datasets.split(",")
    folds = [1] if args.quick else [int(x) for x in args.folds.split(",")]
    models = [m for m in args.models.split(",") if m]
    entries: list[dict[str, Any]] = []
    raw: list[dict[str, Any]] = []
    for dataset in datasets:
        for split in splits(args.data, dataset, folds):
            for model in models:
                if (dataset, model) in SKIPPED and not args.akt_ensemble:
                    continue
                if model.startswith("pybkt"):
                    r = run_pybkt(split, model.endswith("forgets"), args.quick)
                    if r is None:
                        continue
                else:
                    r = run_learnloop(split, model, args.quick)
                e = entry(split, model, r)
                entries.append(e)
                raw.append({"entry": e, "result": {k: v for k, v in r.items() if k != "history"}})
                auc = f"{e['auc']:.4f}" if e["auc"] is not None else "-"
                extra = f" oracle {e['oracle_auc']:.4f}" if "oracle_auc" in e else ""
                fold = f" fold {e['fold']}" if e["fold"] else ""
                took = f"train {e['train_seconds']} s"
                print(f"{e['dataset']}{fold} {model:14s} AUC {auc} {took}{extra}", flush=True)
    if args.merge and args.out.exists():
        old = json.loads(args.out.read_text())
        fresh = {(e["dataset"], e["fold"], e["model"]) for e in entries}
        kept = [
            r
            for r in old["runs"]
            if (r["entry"]["dataset"], r["entry"]["fold"], r["entry"]["model"]) not in fresh
        ]
        raw = kept + raw
        entries = [r["entry"] for r in raw]
    table = summarize(entries)
    for row in table:
        print(json.dumps(row))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    from benchmarks.common import machine

    args.out.write_text(
        json.dumps(
            {
                "summary": table,
                "entries": entries,
                "runs": raw,
                "machine": machine.describe(),
                "quick": args.quick,
            },  # fmt: skip
            indent=2,
            default=str,
        )
        + "\n"
    )
    print(f"wrote {args.out}")


def mean(es: list[dict[str, Any]], key: str) -> float | None:
    values = [e[key] for e in es if e.get(key) is not None]
    return round(sum(values) / len(values), 4) if values else None


def summarize(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per dataset × model (folds averaged)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in entries:
        groups.setdefault((e["dataset"], e["model"]), []).append(e)
    rows = []
    for (dataset, model), es in groups.items():
        row = {
            "dataset": dataset,
            "model": model,
            "folds": len(es),
            "auc": mean(es, "auc"),
            "accuracy": mean(es, "accuracy"),
            "train_seconds": mean(es, "train_seconds"),
        }
        for key in ("oracle_auc", "omniscient_auc", "gap_to_oracle"):
            if any(key in e for e in es):
                row[key] = mean(es, key)
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()

"""pyBKT peer run for the knowledge-tracing benchmark.

Runs in pyBKT's own virtualenv (``benchmarks/.peers/pybkt/``, made by ``benchmarks/kt/peers.sh``),
so it imports nothing from learnloop: only the standard library, numpy, pandas, scikit-learn and
pyBKT. It reads a train/test split in one of the common knowledge-tracing file formats, fits
pyBKT's standard BKT model (optionally with forgetting) once per seed, predicts every test row from
that learner's earlier test rows, and writes AUC, accuracy and fit time as JSON.

    benchmarks/.peers/pybkt/bin/python benchmarks/kt/pybkt_runner.py --format dkvmn \\
        --train TRAIN.csv --test TEST.csv --seeds 0 1 2 --json out.json [--forgets]

Formats:

- ``dkt`` / ``dkvmn`` (3 lines per learner): count; skill ids; 0/1 answers.
- ``akt`` (4 lines per learner): ``<student index>,<user id>``; problem ids; skill ids; answers.
  Consecutive rows with the same problem and answer are the per-skill copies of one attempt
  (as learnloop's loader reads them): one interaction with all their skills, unless
  ``--siblings keep`` (the rows as they are, the source papers' protocol).
- ``csv``: header with ``learner_id``, ``skill_id`` or ``skill_ids`` (several skills split by
  ``;`` or ``_``), ``correct`` and optionally ``timestamp`` (else file order). A multi-skill
  interaction becomes one pyBKT row per skill; its prediction is the mean over those rows.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

COLUMNS = ["user_id", "skill_name", "correct", "order_id", "interaction"]


def _split_line(line: str) -> list[str]:
    items = line.strip().rstrip(",").split(",")
    return [item.strip() for item in items if item.strip() != ""]


def _nonblank_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [line for line in handle if line.strip()]


def _rows_from_sequences(
    sequences: list[tuple[str, list[str], list[str]]],
) -> list[tuple[str, str, int]]:
    rows: list[tuple[str, str, int]] = []
    for learner, skills, answers in sequences:
        if len(skills) != len(answers):
            raise ValueError(f"learner {learner}: {len(skills)} skills but {len(answers)} answers")
        for skill, answer in zip(skills, answers, strict=True):
            rows.append((learner, skill, int(float(answer))))
    return rows


def read_three_line(path: str) -> list[tuple[str, list[list[str]], int]]:
    """DKT/DKVMN format: ``count``, ``skill ids``, ``answers`` per learner."""
    lines = _nonblank_lines(path)
    if len(lines) % 3:
        raise ValueError(f"{path}: {len(lines)} non-blank lines, not a multiple of 3")
    sequences = []
    for start in range(0, len(lines), 3):
        count = int(float(lines[start].strip().rstrip(",")))
        skills = _split_line(lines[start + 1])
        answers = _split_line(lines[start + 2])
        if count != len(skills):
            raise ValueError(f"{path}: learner {start // 3} says {count} items, has {len(skills)}")
        sequences.append((str(start // 3), skills, answers))
    return [(u, [[s]], c) for u, s, c in _rows_from_sequences(sequences)]


def read_four_line(path: str, merge: bool = True) -> list[tuple[str, list[list[str]], int]]:
    """AKT format: ``<student index>,<user id>``, problem ids, skill ids, answers per learner."""
    lines = _nonblank_lines(path)
    if len(lines) % 4:
        raise ValueError(f"{path}: {len(lines)} non-blank lines, not a multiple of 4")
    sequences = []
    problem_lists: list[list[str]] = []
    for start in range(0, len(lines), 4):
        learner = _split_line(lines[start])[0]
        problems = _split_line(lines[start + 1])
        skills = _split_line(lines[start + 2])
        answers = _split_line(lines[start + 3])
        if not (len(problems) == len(skills) == len(answers)):
            raise ValueError(
                f"{path}: learner {learner}: {len(problems)} problems, "
                f"{len(skills)} skills, {len(answers)} answers"
            )
        sequences.append((f"{start // 4}:{learner}", skills, answers))
        problem_lists.append(problems)
    out: list[tuple[str, list[list[str]], int]] = []
    last: tuple[str, str, int] | None = None
    rows = _rows_from_sequences(sequences)
    problems_flat = [p for ps in problem_lists for p in ps]
    for (learner, skill, answer), problem in zip(rows, problems_flat, strict=True):
        if merge and last == (learner, problem, answer):
            if skill not in out[-1][1][0]:
                out[-1][1][0].append(skill)
            continue
        out.append((learner, [[skill]], answer))
        last = (learner, problem, answer)
    return out


def read_csv(path: str) -> list[tuple[str, list[list[str]], int]]:
    """CSV: ``learner_id``, ``skill_id``/``skill_ids``, ``correct``, optional ``timestamp``."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    skill_column = "skill_id" if "skill_id" in frame.columns else "skill_ids"
    missing = {"learner_id", skill_column, "correct"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
    frame["_row"] = np.arange(len(frame))
    if "timestamp" in frame.columns:
        stamps = pd.to_numeric(frame["timestamp"], errors="coerce")
        if stamps.isna().any():
            stamps = pd.to_datetime(frame["timestamp"], errors="coerce").astype("int64")
        frame["_time"] = stamps
        frame = frame.sort_values(["learner_id", "_time", "_row"], kind="stable")
    else:
        frame = frame.sort_values(["learner_id", "_row"], kind="stable")
    out = []
    for learner, skills, correct in zip(
        frame["learner_id"], frame[skill_column], frame["correct"], strict=True
    ):
        names = [s.strip() for s in re.split(r"[;_]", skills) if s.strip()]
        if not names:
            continue
        out.append((str(learner), [names], int(float(correct))))
    return out


READERS = {"dkt": read_three_line, "dkvmn": read_three_line, "akt": read_four_line, "csv": read_csv}


def to_frame(records: list[tuple[str, list[list[str]], int]], prefix: str) -> pd.DataFrame:
    """pyBKT's long frame: one row per (interaction, skill); ``order_id`` increases per learner."""
    users, skills, correct, interactions = [], [], [], []
    for interaction, (learner, (names,), answer) in enumerate(records):
        for name in names:
            users.append(f"{prefix}{learner}")
            skills.append(name)
            correct.append(answer)
            interactions.append(interaction)
    frame = pd.DataFrame(
        {
            "user_id": users,
            "skill_name": skills,
            "correct": np.asarray(correct, dtype=np.int64),
            "interaction": np.asarray(interactions, dtype=np.int64),
        }
    )
    # Records arrive grouped by learner in time order; the running row number is a valid order.
    frame["order_id"] = np.arange(len(frame), dtype=np.int64)
    return frame[COLUMNS]


def load(paths: list[str], fmt: str, tag: str, merge: bool = True) -> pd.DataFrame:
    frames = []
    for index, path in enumerate(paths):
        records = read_four_line(path, merge) if fmt == "akt" else READERS[fmt](path)
        frames.append(to_frame(records, prefix=f"{tag}{index}:"))
    frame = pd.concat(frames, ignore_index=True)
    # interaction ids must stay unique across files, order ids increasing.
    frame["interaction"] = frame.groupby(["user_id", "interaction"], sort=False).ngroup()
    frame["order_id"] = np.arange(len(frame), dtype=np.int64)
    return frame


def pybkt_info() -> tuple[str, bool]:
    import pyBKT

    version = getattr(pyBKT, "__version__", None)
    if version is None:
        try:
            from importlib.metadata import version as dist_version

            version = dist_version("pyBKT")
        except Exception:  # any metadata failure falls back to the pinned version
            version = "1.4.3"
    package = os.path.dirname(pyBKT.__file__)
    compiled = bool(glob.glob(os.path.join(package, "fit", "E_step*.so")))
    return str(version), compiled


def score(test: pd.DataFrame, predicted: pd.DataFrame) -> tuple[float, float, int]:
    """AUC and accuracy per interaction (sibling skill rows averaged)."""
    merged = test[["interaction", "correct"]].copy()
    merged["p"] = predicted["correct_predictions"].to_numpy(dtype=float)
    per = merged.groupby("interaction", sort=False).agg(
        correct=("correct", "first"), p=("p", "mean")
    )
    y = per["correct"].to_numpy()
    p = per["p"].to_numpy()
    auc = float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")
    accuracy = float(np.mean((p >= 0.5).astype(int) == y))
    return auc, accuracy, len(per)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", required=True, choices=sorted(READERS))
    parser.add_argument("--train", required=True, action="append", nargs="+")
    parser.add_argument("--test", required=True)
    parser.add_argument("--forgets", action="store_true", help="fit BKT with forgetting")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--num-fits", type=int, default=5, help="random restarts per skill")
    parser.add_argument("--json", required=True, help="write the result here")
    parser.add_argument(
        "--siblings", choices=["merge", "keep"], default="merge",
        help="akt: per-skill copies of one attempt as one interaction (merge) or as rows (keep)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    train_paths = [path for group in args.train for path in group]

    from pyBKT.models import Model

    version, compiled = pybkt_info()
    merge = args.siblings == "merge"
    train = load(train_paths, args.format, "train", merge)
    test_all = load([args.test], args.format, "test", merge)

    # pyBKT cannot predict skills it never fitted: drop whole interactions touching one.
    known = set(train["skill_name"].unique())
    unknown = ~test_all["skill_name"].isin(known)
    bad = set(test_all.loc[unknown, "interaction"])
    test = test_all[~test_all["interaction"].isin(bad)].reset_index(drop=True)
    test_interactions = int(test_all["interaction"].nunique())
    dropped = len(bad)

    aucs, accuracies, seconds = [], [], []
    scored = 0
    for seed in args.seeds:
        model = Model(seed=seed, num_fits=args.num_fits, parallel=True)
        start = time.perf_counter()
        model.fit(
            data=train[["user_id", "skill_name", "correct", "order_id"]], forgets=args.forgets
        )
        seconds.append(time.perf_counter() - start)
        predicted = model.predict(data=test[["user_id", "skill_name", "correct", "order_id"]])
        predicted = predicted.sort_values("order_id", kind="stable").reset_index(drop=True)
        if not np.array_equal(predicted["order_id"].to_numpy(), test["order_id"].to_numpy()):
            raise RuntimeError("pyBKT's predictions do not line up with the test rows")
        auc, accuracy, scored = score(test, predicted)
        aucs.append(auc)
        accuracies.append(accuracy)

    result = {
        "peer": "pyBKT",
        "version": version,
        "forgets": bool(args.forgets),
        "format": args.format,
        "siblings": args.siblings,
        "num_fits": args.num_fits,
        "train": train_paths,
        "test": args.test,
        "seeds": list(args.seeds),
        "auc": float(np.mean(aucs)),
        "auc_per_seed": aucs,
        "accuracy": float(np.mean(accuracies)),
        "accuracy_per_seed": accuracies,
        "train_seconds": float(np.mean(seconds)),
        "train_seconds_per_seed": seconds,
        "train_rows": len(train),
        "train_skills": len(known),
        "test_rows": test_interactions,
        "scored_rows": scored,
        "dropped_rows": dropped,
        "compiled": compiled,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"pyBKT {version} ({'compiled' if compiled else 'PURE PYTHON'}) "
        f"forgets={result['forgets']} seeds={result['seeds']}: "
        f"AUC {result['auc']:.4f} accuracy {result['accuracy']:.4f} "
        f"fit {result['train_seconds']:.2f} s, test rows {test_interactions} "
        f"(dropped {dropped})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

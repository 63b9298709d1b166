"""Interaction data: the file formats of the knowledge-tracing literature and plain tables.

Everything is read into one shape, an *interactions frame*: one row per attempt with the columns
``learner_id`` (str), ``item_id`` (str or missing), ``skill_ids`` (str; several skills of one
question joined by ``;``), ``correct`` (0/1) and ``order`` (increasing within a learner).

Formats:

* ``dkt`` / ``dkvmn`` — three lines per learner: count, comma-separated skill ids, comma-separated
  answers (a trailing comma is tolerated).
* ``akt`` — four lines per learner: ``<student index>,<user id>``, problem ids, skill ids, answers.
* ``csv`` — a CSV or Parquet table with ``learner_id``, ``correct``, ``skill_id``/``skill_ids``
  and/or ``item_id``, and optionally ``timestamp`` (file order otherwise).

**Several skills on one question.** Tables exported from tutoring systems often repeat a
multi-skill attempt once per skill, with the same answer. Fed as separate steps, the model would
read the answer from the first copy while predicting the second (label leakage). Consecutive rows
of one learner with the same item and timestamp are therefore merged into one attempt whose
``skill_ids`` holds every skill; models see the answer only after predicting the whole attempt.

The AKT 4-line files (no timestamps) carry the same expansion: in ASSISTments 2009 with problem
ids, 16 % of rows repeat the previous row's problem with another skill and, in all but two of
51,052 cases, the same answer. Consecutive rows of one learner with the same problem id and the
same answer are merged there too. ``siblings="keep"`` reads the rows as they are — the protocol
of the source papers, kept only to show how much of their figures the leaked copies make.

Every loader names the file and line of the first malformed record (:class:`FormatError`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from learnloop.core.errors import InvalidInput, Issue

Format = Literal["dkt", "dkvmn", "akt", "csv"]
FORMATS: tuple[str, ...] = ("dkt", "dkvmn", "akt", "csv")
SKILL_SEP = ";"
COLUMNS = ["learner_id", "item_id", "skill_ids", "correct", "order"]


class FormatError(InvalidInput):
    """A file that is not in the format it was read as; names the file and line."""

    def __init__(self, path: Path | str, line: int, problem: str) -> None:
        self.path, self.line = str(path), line
        super().__init__(
            f"{Path(path).name}, line {line}: {problem}", [Issue(f"line {line}", problem)]
        )


def load_interactions(
    path: Path | str, fmt: str, *, learner_prefix: str = "", siblings: str = "merge"
) -> pd.DataFrame:
    """Read ``path`` in format ``fmt`` into an interactions frame.

    ``siblings="keep"`` leaves the per-skill copies of one attempt as separate rows (they leak
    the answer; see the module docs) — for reproducing the source papers' protocol only."""
    path = Path(path)
    if fmt not in FORMATS:
        raise InvalidInput("unknown format", [Issue("format", f"{fmt!r}; one of {FORMATS}")])
    if siblings not in ("merge", "keep"):
        raise InvalidInput("unknown sibling rule", [Issue("siblings", "merge or keep")])
    if not path.is_file():
        raise InvalidInput("no such file", [Issue("path", str(path))])
    if fmt in ("dkt", "dkvmn"):
        frame = _records_frame(_three_line(path), learner_prefix)
    elif fmt == "akt":
        frame = _records_frame(_four_line(path, merge=siblings == "merge"), learner_prefix)
    else:
        frame = read_table(path, merge=siblings == "merge")
    return frame


@dataclass(frozen=True)
class _Record:
    learner: str
    items: list[str] | None
    skills: list[str]
    answers: list[int]


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8") as f:
        for number, raw in enumerate(f, start=1):
            line = raw.strip()
            if line:
                yield number, line


def _ids(path: Path, number: int, line: str, what: str) -> list[str]:
    parts = [p.strip() for p in line.rstrip(",").split(",")]
    for p in parts:
        if not p or not p.lstrip("-").isdigit():
            raise FormatError(path, number, f"{what} must be comma-separated integers, got {p!r}")
    return parts


def _answers(path: Path, number: int, line: str) -> list[int]:
    parts = [p.strip() for p in line.rstrip(",").split(",")]
    bad = next((p for p in parts if p not in ("0", "1")), None)
    if bad is not None:
        raise FormatError(path, number, f"answers must be 0 or 1, got {bad!r}")
    return [int(p) for p in parts]


def _three_line(path: Path) -> Iterator[_Record]:
    lines = list(_lines(path))
    if len(lines) % 3:
        raise FormatError(
            path, lines[-1][0] if lines else 1, "3-line format: line count is not a multiple of 3"
        )
    for k in range(0, len(lines), 3):
        (n0, count), (n1, skills), (n2, answers) = lines[k : k + 3]
        if not count.rstrip(",").isdigit():
            raise FormatError(path, n0, f"expected the number of interactions, got {count!r}")
        ids = _ids(path, n1, skills, "skill ids")
        marks = _answers(path, n2, answers)
        length = int(count.rstrip(","))
        if len(ids) != length or len(marks) != length:
            raise FormatError(
                path, n0, f"says {length} interactions; {len(ids)} ids, {len(marks)} answers"
            )
        yield _Record(f"{k // 3}", None, ids, marks)


def _four_line(path: Path, *, merge: bool = True) -> Iterator[_Record]:
    lines = list(_lines(path))
    if len(lines) % 4:
        raise FormatError(
            path, lines[-1][0] if lines else 1, "4-line format: line count is not a multiple of 4"
        )
    for k in range(0, len(lines), 4):
        (n0, head), (n1, problems), (n2, skills), (n3, answers) = lines[k : k + 4]
        learner = head.split(",")[0].strip()
        if not learner:
            raise FormatError(path, n0, "expected '<student index>,<user id>'")
        items = _ids(path, n1, problems, "problem ids")
        ids = _ids(path, n2, skills, "skill ids")
        marks = _answers(path, n3, answers)
        if not len(items) == len(ids) == len(marks):
            raise FormatError(
                path, n1, f"{len(items)} problems, {len(ids)} skills, {len(marks)} answers"
            )
        if merge:
            items, ids, marks = _merge_copies(items, ids, marks)
        # a learner may appear in several records (AKT's extra training student): keep them apart
        yield _Record(f"{learner}#{k // 4}", items, ids, marks)


def _merge_copies(
    items: list[str], skills: list[str], answers: list[int]
) -> tuple[list[str], list[str], list[int]]:
    """Consecutive positions with the same item and answer → one attempt with all their skills."""
    if not items:
        return items, skills, answers
    out_items, out_skills, out_answers = [items[0]], [[skills[0]]], [answers[0]]
    for item, skill, answer in zip(items[1:], skills[1:], answers[1:], strict=True):
        if item == out_items[-1] and answer == out_answers[-1]:
            if skill not in out_skills[-1]:
                out_skills[-1].append(skill)
            continue
        out_items.append(item)
        out_skills.append([skill])
        out_answers.append(answer)
    return out_items, [SKILL_SEP.join(s) for s in out_skills], out_answers


def _records_frame(records: Iterator[_Record], prefix: str) -> pd.DataFrame:
    learners, items, skills, answers, order = [], [], [], [], []
    for r in records:
        n = len(r.answers)
        learners.extend([prefix + r.learner] * n)
        items.extend(r.items if r.items is not None else [None] * n)
        skills.extend(r.skills)
        answers.extend(r.answers)
        order.extend(range(n))
    return pd.DataFrame(
        {
            "learner_id": pd.Series(learners, dtype=object),
            "item_id": pd.Series(items, dtype=object),
            "skill_ids": pd.Series(skills, dtype=object),
            "correct": np.asarray(answers, dtype=np.int8),
            "order": np.asarray(order, dtype=np.int64),
        }
    )


# -- plain tables ------------------------------------------------------------------------------


def read_table(path: Path, *, merge: bool = True) -> pd.DataFrame:
    if path.suffix.lower() in (".parquet", ".pq"):
        raw = pd.read_parquet(path)
    else:
        try:
            raw = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, UnicodeDecodeError) as e:
            raise FormatError(path, 1, f"not a readable CSV: {e}") from e
    try:
        return normalize_table(raw, row_offset=2, merge=merge)
    except InvalidInput as e:
        issue = e.issues[0] if e.issues else Issue("<rows>", str(e))
        if issue.loc.startswith("line "):
            raise FormatError(path, int(issue.loc.split()[-1]), issue.message) from e
        raise FormatError(path, 1, f"header: {issue.loc}: {issue.message}") from e


def _blank(v: object) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""


def normalize_table(
    raw: pd.DataFrame,
    *,
    learner_column: str = "learner_id",
    target: str = "correct",
    order_column: str | None = None,
    row_offset: int = 0,
    merge: bool = True,
) -> pd.DataFrame:
    """An interactions frame from a table of attempts; sibling rows of one attempt are merged.

    ``learner_column`` falls back to ``subject_id``; the order is ``order_column``, else
    ``timestamp``, else ``predicted_at``, else the row order. Errors name ``line N`` when
    ``row_offset`` is given (the file line of row 0), else the column.
    """

    def where(i: int, column: str) -> str:
        return f"line {i + row_offset}" if row_offset else column

    columns = set(raw.columns)
    learner = learner_column if learner_column in columns else "subject_id"
    if learner not in columns:
        raise InvalidInput("no learner column", [Issue(learner_column, "column missing")])
    if target not in columns:
        raise InvalidInput("no answers", [Issue(target, "column missing")])
    skill_col = next((c for c in ("skill_ids", "skill_id") if c in columns), None)
    if skill_col is None and "item_id" not in columns:
        raise InvalidInput("no skills or items", [Issue("skill_ids", "need skill_ids or item_id")])
    n = len(raw)
    out = pd.DataFrame(index=range(n))
    learners = raw[learner].tolist()
    for i, v in enumerate(learners):
        if _blank(v):
            raise InvalidInput("missing learner", [Issue(where(i, learner), "empty learner id")])
    out["learner_id"] = [str(v) for v in learners]
    answers = []
    for i, v in enumerate(raw[target].tolist()):
        text = str(v).strip()
        if text in ("0", "1", "0.0", "1.0", "True", "False", "true", "false"):
            answers.append(1 if text in ("1", "1.0", "True", "true") else 0)
        else:
            raise InvalidInput("bad answer", [Issue(where(i, target), f"must be 0 or 1: {v!r}")])
    out["correct"] = np.asarray(answers, dtype=np.int8)
    items = raw["item_id"].tolist() if "item_id" in columns else [None] * n
    out["item_id"] = pd.Series([None if _blank(v) else str(v) for v in items], dtype=object)
    if skill_col is not None:
        skills = [_skill_text(v) for v in raw[skill_col].tolist()]
    else:
        skills = [""] * n
    for i, s in enumerate(skills):
        if not s and out["item_id"].iloc[i] is None:
            raise InvalidInput("no skill or item", [Issue(where(i, "skill_ids"), "both empty")])
    out["skill_ids"] = pd.Series(skills, dtype=object)
    key = next((c for c in (order_column, "timestamp", "predicted_at") if c and c in columns), None)
    if key is not None:
        stamps = raw[key]
        numeric = pd.to_numeric(stamps, errors="coerce")
        if numeric.notna().all():
            out["_t"] = numeric.to_numpy(dtype=np.float64)
        else:
            parsed = pd.to_datetime(stamps, utc=True, errors="coerce", format="mixed")
            bad = parsed.isna()
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise InvalidInput("bad time", [Issue(where(i, key), f"{stamps.iloc[i]!r}")])
            out["_t"] = (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    else:
        out["_t"] = np.arange(n, dtype=np.float64)
    out["_row"] = np.arange(n)
    out = out.sort_values(["learner_id", "_t", "_row"], kind="stable").reset_index(drop=True)
    if merge:
        out = merge_siblings(out)
    out["order"] = out.groupby("learner_id", sort=False).cumcount().astype(np.int64)
    return out[[*COLUMNS, "_row"]].reset_index(drop=True)


def _skill_text(v: object) -> str:
    if _blank(v):
        return ""
    if isinstance(v, str) and v.startswith("["):  # a list kept as JSON text
        with contextlib.suppress(json.JSONDecodeError):
            v = json.loads(v)
    if isinstance(v, list | tuple | np.ndarray):
        parts = [str(x).strip() for x in v]
    else:
        parts = [p.strip() for p in str(v).replace("_", SKILL_SEP).split(SKILL_SEP)]
    return SKILL_SEP.join(dict.fromkeys(p for p in parts if p))


def merge_siblings(frame: pd.DataFrame) -> pd.DataFrame:
    """Merge consecutive rows of one learner with the same item and time into one attempt.

    Their skills are united. Rows of one attempt that disagree on the answer are kept apart
    (they are separate attempts, not copies).
    """
    if frame["item_id"].isna().all() or len(frame) < 2:
        return frame
    same = (
        (frame["learner_id"] == frame["learner_id"].shift())
        & (frame["item_id"] == frame["item_id"].shift())
        & frame["item_id"].notna()
        & (frame["_t"] == frame["_t"].shift())
        & (frame["correct"] == frame["correct"].shift())
    )
    if not same.any():
        return frame
    group = (~same).cumsum()
    merged = frame.groupby(group, sort=False).agg(
        learner_id=("learner_id", "first"),
        item_id=("item_id", "first"),
        skill_ids=("skill_ids", lambda s: SKILL_SEP.join(dict.fromkeys(_split(s)))),
        correct=("correct", "first"),
        _t=("_t", "first"),
        _row=("_row", "first"),
    )
    return merged.reset_index(drop=True)


def _split(values: pd.Series) -> Iterator[str]:
    for v in values:
        yield from (p for p in str(v).split(SKILL_SEP) if p)


def concat_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate interaction frames whose learner ids must stay apart (prefixed per frame)."""
    parts = []
    for k, f in enumerate(frames):
        f = f.copy()
        f["learner_id"] = f"f{k}:" + f["learner_id"].astype(str)
        parts.append(f)
    return pd.concat(parts, ignore_index=True)

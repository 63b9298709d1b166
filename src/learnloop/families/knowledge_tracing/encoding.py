"""Ids → indices, and interaction frames → padded, chunked sequences for the networks.

Index 0 is padding and index 1 the *cold-start* entry shared by every id the model has not seen
(an unknown item or skill is predicted with it and flagged, never refused). Known ids start at 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from learnloop.families.knowledge_tracing.data import SKILL_SEP

PAD, UNKNOWN = 0, 1


@dataclass
class Vocab:
    """Known skills and items; ``max_skills`` is the most skills one attempt carries."""

    skills: dict[str, int]
    items: dict[str, int] = field(default_factory=dict)
    max_skills: int = 1

    @classmethod
    def build(cls, frame: pd.DataFrame, *, use_items: bool) -> Vocab:
        names = sorted({s for text in frame["skill_ids"] for s in split_skills(text)}, key=_key)
        skills = {s: i + 2 for i, s in enumerate(names)}
        items: dict[str, int] = {}
        if use_items:
            known = sorted({str(v) for v in frame["item_id"].dropna()}, key=_key)
            items = {s: i + 2 for i, s in enumerate(known)}
        k = max((len(split_skills(t)) for t in frame["skill_ids"]), default=1)
        return cls(skills, items, max(k, 1))

    @property
    def n_skills(self) -> int:  # rows of a skill table, padding and cold start included
        return len(self.skills) + 2

    @property
    def n_items(self) -> int:
        return len(self.items) + 2

    @property
    def uses_items(self) -> bool:
        return bool(self.items)

    def skill_indices(self, text: str | Sequence[str] | None) -> tuple[list[int], list[str]]:
        """Indices of the skills in ``text`` (at most ``max_skills``) and the unknown ones."""
        names = split_skills(text)
        if not names:
            return [UNKNOWN], []
        idx = [self.skills.get(s, UNKNOWN) for s in names]
        unknown = [s for s, i in zip(names, idx, strict=True) if i == UNKNOWN]
        return idx[: self.max_skills], unknown

    def item_index(self, item: str | None) -> tuple[int, bool]:
        """Index of ``item`` and whether it is unknown (only when the model uses items)."""
        if not self.items or item is None:
            return PAD, False
        i = self.items.get(str(item), UNKNOWN)
        return i, i == UNKNOWN

    def to_json(self) -> dict[str, Any]:
        return {"skills": self.skills, "items": self.items, "max_skills": self.max_skills}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Vocab:
        return cls(dict(raw["skills"]), dict(raw["items"]), int(raw["max_skills"]))

    def skill_names(self) -> list[str]:
        return list(self.skills)


def _key(s: str) -> tuple[int, Any]:
    return (0, int(s)) if s.lstrip("-").isdigit() else (1, s)


def split_skills(text: str | Sequence[str] | None) -> list[str]:
    if text is None:
        return []
    if isinstance(text, str):
        return [p for p in (x.strip() for x in text.split(SKILL_SEP)) if p]
    return [str(p).strip() for p in text if str(p).strip()]


@dataclass
class Batch:
    """Padded sequences: ``skills`` [N, T, K]; ``items``, ``correct``, ``mask``, ``score``,
    ``rows`` [N, T]. ``score`` marks positions whose prediction counts (loss or metric);
    ``rows`` maps positions back to frame rows (-1 on padding)."""

    skills: np.ndarray
    items: np.ndarray
    correct: np.ndarray
    mask: np.ndarray
    score: np.ndarray
    rows: np.ndarray
    recency: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.skills.shape[0])

    def take(self, index: np.ndarray | slice) -> Batch:
        b = Batch(
            self.skills[index],
            self.items[index],
            self.correct[index],
            self.mask[index],
            self.score[index],
            self.rows[index],
            None if self.recency is None else self.recency[index],
        )
        width = int(b.mask.sum(axis=1).max()) if len(b) else 0
        return b.trim(max(width, 1))

    def trim(self, width: int) -> Batch:
        return Batch(
            self.skills[:, :width],
            self.items[:, :width],
            self.correct[:, :width],
            self.mask[:, :width],
            self.score[:, :width],
            self.rows[:, :width],
            None if self.recency is None else self.recency[:, :width],
        )


def encode_frame(frame: pd.DataFrame, vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """Skill index matrix [rows, K] and item index vector [rows] of an interactions frame."""
    k = vocab.max_skills
    skills = np.zeros((len(frame), k), dtype=np.int64)
    cache: dict[str, list[int]] = {}
    for r, text in enumerate(frame["skill_ids"].tolist()):
        idx = cache.get(text)
        if idx is None:
            idx = cache[text] = vocab.skill_indices(text)[0]
        skills[r, : len(idx)] = idx
    if vocab.uses_items:
        get = vocab.items.get
        items = np.fromiter(
            (PAD if v is None else get(str(v), UNKNOWN) for v in frame["item_id"].tolist()),
            dtype=np.int64,
            count=len(frame),
        )
    else:
        items = np.zeros(len(frame), dtype=np.int64)
    return skills, items


def sequences(
    frame: pd.DataFrame, vocab: Vocab, max_len: int, score: np.ndarray | None = None
) -> Batch:
    """Chunk every learner's attempts (in ``order``) into sequences of at most ``max_len``.

    Chunks are independent sequences, as in the DKVMN and AKT code: the history restarts at each
    chunk boundary. ``score`` (bool per frame row) marks the rows that count; default all.
    """
    frame = frame.reset_index(drop=True)
    order = np.lexsort((frame["order"].to_numpy(), frame["learner_id"].to_numpy()))
    skills, items = encode_frame(frame, vocab)
    correct = frame["correct"].to_numpy(dtype=np.float32)
    learners = frame["learner_id"].to_numpy()[order]
    # boundaries of each learner's run in `order`
    change = np.flatnonzero(learners[1:] != learners[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(order)]])
    chunks: list[tuple[int, int]] = []
    for s, e in zip(starts, ends, strict=True):
        for c in range(s, e, max_len):
            chunks.append((c, min(c + max_len, e)))
    n = len(chunks)
    width = max((e - s for s, e in chunks), default=1)
    out = Batch(
        np.zeros((n, width, vocab.max_skills), dtype=np.int64),
        np.zeros((n, width), dtype=np.int64),
        np.zeros((n, width), dtype=np.float32),
        np.zeros((n, width), dtype=bool),
        np.zeros((n, width), dtype=bool),
        np.full((n, width), -1, dtype=np.int64),
    )
    scored = np.ones(len(frame), dtype=bool) if score is None else np.asarray(score, dtype=bool)
    for j, (s, e) in enumerate(chunks):
        rows = order[s:e]
        m = e - s
        out.skills[j, :m] = skills[rows]
        out.items[j, :m] = items[rows]
        out.correct[j, :m] = correct[rows]
        out.mask[j, :m] = True
        out.score[j, :m] = scored[rows]
        out.rows[j, :m] = rows
    out.recency = recency_features(out.skills[:, :, 0], out.correct, out.mask, vocab.n_skills)
    return out


RECENCY_FEATURES = 4
NEVER = np.log1p(256.0)


def recency_features(
    skill: np.ndarray, correct: np.ndarray, mask: np.ndarray, n_skills: int
) -> np.ndarray:
    """What each sequence's earlier attempts say about the skill of attempt ``t`` [N, T, 4]:
    log(1 + earlier attempts), smoothed success rate, last answer (0.5 if none) and
    log(1 + attempts since the last one on it). Uses the attempt's first skill."""
    n, width = skill.shape
    out = np.zeros((n, width, RECENCY_FEATURES), dtype=np.float32)
    state = RecencyState.empty((n,), n_skills)
    rows = np.arange(n)
    for t in range(width):
        s = skill[:, t]
        out[:, t] = state.features(rows, s)
        state.update(rows, s, correct[:, t], mask[:, t])
    return out


@dataclass
class RecencyState:
    """Per-(sequence, skill) counters behind :func:`recency_features`, also kept per learner
    when serving."""

    attempts: np.ndarray
    right: np.ndarray
    last: np.ndarray
    last_step: np.ndarray
    step: np.ndarray

    @classmethod
    def empty(cls, shape: tuple[int, ...], n_skills: int) -> RecencyState:
        full = (*shape, n_skills)
        return cls(
            np.zeros(full, np.float32),
            np.zeros(full, np.float32),
            np.full(full, 0.5, np.float32),
            np.full(full, -1, np.int64),
            np.zeros(shape, np.int64),
        )

    def features(self, rows: np.ndarray, s: np.ndarray) -> np.ndarray:
        a = self.attempts[rows, s]
        last_step = self.last_step[rows, s]
        gap = np.where(last_step < 0, NEVER, np.log1p(self.step[rows] - last_step))
        return np.stack(
            [np.log1p(a), (self.right[rows, s] + 1) / (a + 2), self.last[rows, s], gap], axis=-1
        ).astype(np.float32)

    def update(
        self, rows: np.ndarray, s: np.ndarray, correct: np.ndarray, live: np.ndarray
    ) -> None:
        r, k, c = rows[live], s[live], correct[live]
        self.attempts[r, k] += 1
        self.right[r, k] += c
        self.last[r, k] = c
        self.last_step[r, k] = self.step[r]
        self.step[r] += 1

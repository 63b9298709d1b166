"""What a learner knows, what to practise next, and how the model behaves.

**Mastery** of a skill is the predicted P(correct) on a typical item of it (no item difficulty)
in the learner's current state; BKT gives P(known) instead. Topics group skills (the
``topics`` mapping given by the caller or stored with the model); a topic's mastery is the mean
of its skills'.

**Recommendations** rank candidate items by *expected learning gain*: for an item answered
right with probability ``p``, the expected rise of the learner's summed mastery after answering
it, ``p·M(right) + (1−p)·M(wrong) − M(now)``, computed by advancing a copy of the learner's state
both ways. Only items whose ``p`` lies in the target difficulty band are considered (not so hard
the learner fails, not so easy nothing is learned); items answered in the last few attempts are
skipped.

**Behaviour analysis** on a labelled table: calibration by skill (mean predicted vs observed,
ECE), AUC/accuracy by position in the sequence, and cold start — accuracy on a learner's first
attempts of a skill.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from learnloop.families.knowledge_tracing.learners import LearnerState
from learnloop.families.knowledge_tracing.schemas import Attempt

if TYPE_CHECKING:
    from learnloop.families.knowledge_tracing.family import KnowledgeTracingFamily

RECENT_SKIP = 5


def _copy_state(family: KnowledgeTracingFamily, state: LearnerState) -> LearnerState:
    clone = LearnerState(state.learner_id)
    clone.step = state.step.copy() if family.params.model == "bkt" else state.step.clone()
    clone.counters = copy.deepcopy(state.counters)
    clone.answered = state.answered
    return clone


def mastery_all(family: KnowledgeTracingFamily, state: LearnerState) -> dict[str, float]:
    return family._mastery(state, None)


def recommend(
    family: KnowledgeTracingFamily,
    state: LearnerState,
    *,
    k: int = 5,
    band: tuple[float, float] = (0.5, 0.85),
    candidates: Sequence[str] | None = None,
    max_candidates: int = 200,
) -> list[dict[str, Any]]:
    """Top ``k`` items by expected learning gain within the difficulty ``band``."""
    v = family._vocab()
    recent = {a.item_id for a in list(state.recent)[-RECENT_SKIP:] if a.item_id}
    if candidates is not None:
        pool = [c for c in candidates if c not in recent]
        as_items = True
    elif v.uses_items or family.item_skills:
        pool = [i for i in family.item_skills if i not in recent]
        as_items = True
    else:  # skill-only models recommend skills to practise
        pool = list(v.skills)
        as_items = False
    if not pool:
        return []
    queries = [
        Attempt(item_id=c, correct=0) if as_items else Attempt(skill_ids=[c], correct=0)
        for c in pool
    ]
    encoded = [family._query(q) for q in queries]
    probs = family._step_probabilities(state, [e[0] for e in encoded], [e[1] for e in encoded])
    low, high = band
    inside = [i for i, p in enumerate(probs) if low <= p <= high]
    if not inside:  # nothing in the band: the closest items to it
        middle = (low + high) / 2
        inside = sorted(range(len(probs)), key=lambda i: abs(probs[i] - middle))[:k]
    # the nearest to the middle of the band first when there are too many to simulate
    middle = (low + high) / 2
    inside = sorted(inside, key=lambda i: abs(probs[i] - middle))[:max_candidates]
    now = sum(family._mastery(state, None).values())
    scored = []
    for i in inside:
        q = queries[i]
        after = []
        for outcome in (1, 0):
            trial = _copy_state(family, state)
            family._apply(
                trial, [Attempt(item_id=q.item_id, skill_ids=q.skill_ids, correct=outcome)]
            )  # type: ignore[arg-type]
            after.append(sum(family._mastery(trial, None).values()))
        p = probs[i]
        gain = p * after[0] + (1 - p) * after[1] - now
        skills = q.skill_ids or family._item_skills(q.item_id)
        scored.append(
            {
                ("item_id" if as_items else "skill_id"): pool[i],
                "skills": skills,
                "probability": round(float(p), 4),
                "expected_gain": round(float(gain), 5),
            }
        )
    scored.sort(key=lambda r: -r["expected_gain"])
    return scored[:k]


def learner_insights(
    family: KnowledgeTracingFamily,
    state: LearnerState,
    *,
    topics: Mapping[str, str] | None = None,
    k: int = 5,
    band: tuple[float, float] = (0.5, 0.85),
    strong: float = 0.8,
    weak: float = 0.6,
) -> dict[str, Any]:
    mastery = mastery_all(family, state)
    recent = list(state.recent)
    practised = {s for a in recent for s in (a.skill_ids or family._item_skills(a.item_id))}
    ranked = sorted(((m, s) for s, m in mastery.items() if s in practised), reverse=True)
    strengths = [{"skill": s, "mastery": m} for m, s in ranked if m >= strong][:k]
    weaknesses = [{"skill": s, "mastery": m} for m, s in reversed(ranked) if m < weak][:k]
    by_topic: dict[str, list[float]] = {}
    for s, m in mastery.items():
        topic = (topics or {}).get(s)
        if topic is not None:
            by_topic.setdefault(topic, []).append(m)
    answers = np.asarray([a.correct for a in recent], dtype=float)
    trend: dict[str, Any] = {"attempts": int(state.answered)}
    if len(answers) >= 2:
        window = min(10, len(answers) // 2)
        trend["recent_accuracy"] = round(float(answers[-window:].mean()), 4)
        trend["earlier_accuracy"] = round(float(answers[:-window].mean()), 4)
        trend["direction"] = (
            "improving"
            if trend["recent_accuracy"] > trend["earlier_accuracy"] + 0.05
            else "declining"
            if trend["recent_accuracy"] < trend["earlier_accuracy"] - 0.05
            else "steady"
        )
    return {
        "learner_id": state.learner_id,
        "attempts": int(state.answered),
        "mastery": mastery,
        "topics": {t: round(float(np.mean(v)), 6) for t, v in sorted(by_topic.items())},
        "strengths": strengths,
        "weaknesses": weaknesses,
        "trend": trend,
        "recommendations": recommend(family, state, k=k, band=band),
        "band": list(band),
    }


# -- behaviour analysis ---------------------------------------------------------------------------

POSITION_BUCKETS = [(0, 1), (1, 5), (5, 10), (10, 20), (20, 50), (50, 100), (100, 10**9)]


def _metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    from learnloop.families.knowledge_tracing.training import binary_metrics

    m = binary_metrics(y, p)
    return {
        "n": int(m["n"]),
        "auc": m.get("auc"),
        "accuracy": m.get("accuracy"),
        "mean_predicted": float(p.mean()) if len(p) else None,
        "observed": float(y.mean()) if len(y) else None,
    }


def _ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            total += m.mean() * abs(p[m].mean() - y[m].mean())
    return float(total)


def behaviour(table: pd.DataFrame, *, min_attempts: int = 30) -> dict[str, Any]:
    """Analysis of a scored table (``predict_table``'s output)."""
    y = table["correct"].to_numpy(dtype=float)
    p = table["probability"].to_numpy(dtype=float)
    first = table["skill_ids"].astype(str).str.split(";").str[0]
    by_skill = []
    for skill, idx in table.groupby(first).indices.items():
        if len(idx) < min_attempts:
            continue
        entry = _metrics(y[idx], p[idx])
        entry["skill"] = str(skill)
        entry["ece"] = round(_ece(y[idx], p[idx]), 4)
        by_skill.append(entry)
    by_skill.sort(key=lambda e: -float(e["ece"] or 0))
    position = table.groupby("learner_id").cumcount().to_numpy()
    by_position = []
    for lo, hi in POSITION_BUCKETS:
        m = (position >= lo) & (position < hi)
        if m.sum() >= min_attempts:
            by_position.append(
                {"from": lo + 1, "to": hi if hi < 10**9 else None, **_metrics(y[m], p[m])}
            )
    nth = table.assign(_s=first).groupby(["learner_id", "_s"]).cumcount().to_numpy()
    cold = {}
    for n in (1, 2, 3):
        m = nth == n - 1
        if m.any():
            cold[f"attempt_{n}_of_skill"] = _metrics(y[m], p[m])
    warm = nth >= 3
    if warm.any():
        cold["later_attempts"] = _metrics(y[warm], p[warm])
    return {
        "overall": {**_metrics(y, p), "ece": round(_ece(y, p), 4)},
        "calibration_by_skill": by_skill,
        "by_position": by_position,
        "cold_start": cold,
    }

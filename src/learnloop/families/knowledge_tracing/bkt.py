"""Bayesian Knowledge Tracing (Corbett & Anderson, 1995), fitted by EM in NumPy.

One two-state hidden Markov model per skill — prior ``p_init``, learn ``p_learn``, optional
``p_forget``, ``p_guess``, ``p_slip`` — fitted on every (learner, skill) chain at once: the
forward–backward passes run over all chains of all skills together, and the M-step sums per
skill. Chains are grouped in buckets of similar length (padded within a bucket only) and sorted
longest first, so step ``t`` touches only the chains still running. The random restarts run
together too: restart ``r`` of skill ``s`` is the "virtual skill" ``r·S + s``; at the end each
skill keeps its best restart (by log-likelihood).

An attempt on several skills updates each skill's chain; its prediction is the mean of its
skills' predictions. A skill unseen in training uses the mean of the fitted parameters.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from learnloop.families.knowledge_tracing.encoding import Vocab, encode_frame

GUESS_SLIP_MAX = 0.45
EPS = 1e-6


@dataclass
class Chains:
    """Observations of (learner, skill) chains, longest chain first: ``obs`` [N, T]."""

    obs: np.ndarray  # float, 0/1, padded with 0
    length: np.ndarray  # [N]
    skill: np.ndarray  # [N] skill index
    rows: np.ndarray  # [N, T] frame row of each observation, -1 padding


def build_chains(frame: pd.DataFrame, vocab: Vocab) -> list[Chains]:
    """The (learner, skill) chains of ``frame`` in buckets of similar length (powers of two)."""
    skills, _ = encode_frame(frame, vocab)
    n, k = skills.shape
    row = np.repeat(np.arange(n), k)
    skill = skills.reshape(-1)
    keep = skill > 0
    row, skill = row[keep], skill[keep]
    learner = pd.factorize(frame["learner_id"].to_numpy())[0][row]
    order = frame["order"].to_numpy()[row]
    sort = np.lexsort((order, skill, learner))
    row, skill, learner = row[sort], skill[sort], learner[sort]
    if not len(row):
        return []
    new = np.ones(len(row), dtype=bool)
    new[1:] = (learner[1:] != learner[:-1]) | (skill[1:] != skill[:-1])
    chain = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    lengths = np.diff(np.append(starts, len(row)))
    position = np.arange(len(row)) - starts[chain]
    correct = frame["correct"].to_numpy(dtype=np.float64)[row]
    bucket_of = np.ceil(np.log2(np.maximum(lengths, 1))).astype(int)
    out = []
    for b in np.unique(bucket_of)[::-1]:
        members = np.flatnonzero(bucket_of == b)
        members = members[np.argsort(-lengths[members], kind="stable")]
        where = np.full(len(lengths), -1)
        where[members] = np.arange(len(members))
        width = int(lengths[members].max())
        obs = np.zeros((len(members), width), dtype=np.float64)
        rows = np.full((len(members), width), -1, dtype=np.int64)
        take = where[chain] >= 0
        c = where[chain][take]
        obs[c, position[take]] = correct[take]
        rows[c, position[take]] = row[take]
        out.append(Chains(obs, lengths[members], skill[starts][members], rows))
    return out


def _replicate(chains: Chains, restarts: int, n_skills: int) -> Chains:
    """The bucket once per restart, skills renumbered to virtual skills ``r·S + s``."""
    return Chains(
        np.tile(chains.obs, (restarts, 1)),
        np.tile(chains.length, restarts),
        np.concatenate([chains.skill + r * n_skills for r in range(restarts)]),
        np.tile(chains.rows, (restarts, 1)),
    )


@dataclass
class BKTParams:
    """Arrays indexed by skill index (``vocab.n_skills`` long)."""

    init: np.ndarray
    learn: np.ndarray
    forget: np.ndarray
    guess: np.ndarray
    slip: np.ndarray

    def to_json(self) -> dict[str, list[float]]:
        return {k: getattr(self, k).tolist() for k in ("init", "learn", "forget", "guess", "slip")}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> BKTParams:
        return cls(**{k: np.asarray(v, dtype=np.float64) for k, v in raw.items()})


def _active(length: np.ndarray, need: int) -> int:
    """Chains are sorted longest first: how many have at least ``need`` observations."""
    return int(np.searchsorted(-length, -need, side="right"))


def _e_step(chains: Chains, p: BKTParams) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    obs, length, s = chains.obs, chains.length, chains.skill
    n, width = obs.shape
    L, T, F, G, S = p.init[s], p.learn[s], p.forget[s], p.guess[s], p.slip[s]
    e_known = np.where(obs > 0.5, 1 - S[:, None], S[:, None])
    e_unknown = np.where(obs > 0.5, G[:, None], 1 - G[:, None])
    alpha = np.zeros((n, width))  # P(known | obs ≤ t), filtered
    scale = np.ones((n, width))
    prior = L.copy()
    for t in range(width):
        m = _active(length, t + 1)
        a1 = prior[:m] * e_known[:m, t]
        a0 = (1 - prior[:m]) * e_unknown[:m, t]
        c = a0 + a1
        scale[:m, t] = c
        alpha[:m, t] = a1 / c
        post = alpha[:m, t]
        prior[:m] = post * (1 - F[:m]) + (1 - post) * T[:m]
    beta1 = np.ones((n, width))
    beta0 = np.ones((n, width))
    for t in range(width - 2, -1, -1):
        m = _active(length, t + 2)
        eb1 = e_known[:m, t + 1] * beta1[:m, t + 1] / scale[:m, t + 1]
        eb0 = e_unknown[:m, t + 1] * beta0[:m, t + 1] / scale[:m, t + 1]
        beta1[:m, t] = F[:m] * eb0 + (1 - F[:m]) * eb1
        beta0[:m, t] = (1 - T[:m]) * eb0 + T[:m] * eb1
    valid = np.arange(width)[None, :] < length[:, None]
    g1 = np.where(valid, alpha * beta1, 0.0)
    g0 = np.where(valid, (1 - alpha) * beta0, 0.0)
    norm = np.where(valid, g0 + g1, 1.0)
    g1, g0 = g1 / norm, g0 / norm
    # expected transitions between t and t+1
    nxt = valid[:, 1:]
    eb1 = e_known[:, 1:] * beta1[:, 1:] / scale[:, 1:]
    eb0 = e_unknown[:, 1:] * beta0[:, 1:] / scale[:, 1:]
    a = alpha[:, :-1]
    x01 = np.where(nxt, (1 - a) * T[:, None] * eb1, 0.0)
    x10 = np.where(nxt, a * F[:, None] * eb0, 0.0)
    stats = {
        "init": g1[:, 0],
        "x01": x01.sum(1),
        "from0": np.where(nxt, g0[:, :-1], 0.0).sum(1),
        "x10": x10.sum(1),
        "from1": np.where(nxt, g1[:, :-1], 0.0).sum(1),
        "g0": g0.sum(1),
        "g0_correct": (g0 * obs).sum(1),
        "g1": g1.sum(1),
        "g1_wrong": (g1 * (1 - obs) * valid).sum(1),
    }
    loglik = np.where(valid, np.log(scale), 0.0).sum(1)
    return loglik, stats


@dataclass
class FitState:
    """EM after ``iteration`` steps (a checkpoint): the parameters of every restart."""

    iteration: int
    params: BKTParams
    previous: float


def _initial(n_skills: int, restarts: int, seed: int, forgets: bool) -> BKTParams:
    parts = []
    for r in range(restarts):
        rng = np.random.default_rng([seed, r])
        parts.append(
            (
                rng.uniform(0.05, 0.9, n_skills),
                rng.uniform(0.02, 0.4, n_skills),
                rng.uniform(0.0, 0.1, n_skills) if forgets else np.zeros(n_skills),
                rng.uniform(0.05, 0.4, n_skills),
                rng.uniform(0.05, 0.4, n_skills),
            )
        )
    init, learn, forget, guess, slip = (np.concatenate(x) for x in zip(*parts, strict=True))
    return BKTParams(init, learn, forget, guess, slip)


def fit_bkt(
    buckets: list[Chains],
    n_skills: int,
    *,
    forgets: bool,
    restarts: int,
    iterations: int,
    seed: int,
    tol: float = 1e-5,
    state: FitState | None = None,
    on_checkpoint: Callable[[FitState], None] | None = None,
    every: int = 10,
) -> tuple[BKTParams, dict[str, float]]:
    """EM from ``restarts`` random starts (seeded by (seed, r)), all run together; stops when
    the log-likelihood improves by less than ``tol`` (relative). ``on_checkpoint`` gets the state
    every ``every`` iterations; a fit resumed from it ends where a straight one does."""
    virtual = restarts * n_skills
    reps = [_replicate(b, restarts, n_skills) for b in buckets]
    skills = np.concatenate([b.skill for b in reps]) if reps else np.zeros(0, dtype=int)
    count = np.bincount(skills, minlength=virtual).astype(np.float64)
    seen = count > 0
    if state is None:
        p, it, previous = _initial(n_skills, restarts, seed, forgets), 0, -np.inf
    else:
        p, it, previous = copy.deepcopy(state.params), state.iteration, state.previous
    ll_virtual = np.full(virtual, -np.inf)

    def per_skill(values: np.ndarray) -> np.ndarray:
        return np.bincount(skills, weights=values, minlength=virtual)

    while it < iterations:
        parts = [_e_step(b, p) for b in reps]
        loglik = np.concatenate([x[0] for x in parts])
        st = {k: np.concatenate([x[1][k] for x in parts]) for k in parts[0][1]} if parts else {}
        ll_virtual = np.where(seen, per_skill(loglik), -np.inf)
        ratio = {
            name: _ratio(per_skill(st[num]), per_skill(st[den]), getattr(p, name))
            for name, num, den in (
                ("learn", "x01", "from0"),
                ("forget", "x10", "from1"),
                ("guess", "g0_correct", "g0"),
                ("slip", "g1_wrong", "g1"),
            )
        }
        p = BKTParams(
            init=np.clip(
                np.where(seen, per_skill(st["init"]) / np.maximum(count, 1), p.init), EPS, 1 - EPS
            ),
            learn=np.clip(ratio["learn"], EPS, 1 - EPS),
            forget=np.clip(ratio["forget"], 0.0, 1 - EPS) if forgets else p.forget,
            guess=np.clip(ratio["guess"], EPS, GUESS_SLIP_MAX),
            slip=np.clip(ratio["slip"], EPS, GUESS_SLIP_MAX),
        )
        it += 1
        total = float(loglik.sum())
        converged = abs(total - previous) <= tol * max(1.0, abs(total))
        previous = total
        if on_checkpoint is not None and (it % every == 0 or converged or it == iterations):
            on_checkpoint(FitState(it, copy.deepcopy(p), previous))
        if converged:
            break
    # each skill keeps its best restart
    by_restart = ll_virtual.reshape(restarts, n_skills)
    best_r = np.argmax(by_restart, axis=0)
    pick = best_r * n_skills + np.arange(n_skills)
    best = BKTParams(
        *(getattr(p, k)[pick].copy() for k in ("init", "learn", "forget", "guess", "slip"))
    )
    trained = seen[:n_skills]
    for name in ("init", "learn", "forget", "guess", "slip"):  # cold start: the mean skill
        values = getattr(best, name)
        values[~trained] = values[trained].mean() if trained.any() else values.mean()
    finite = by_restart.max(axis=0)
    info = {
        "log_likelihood": float(finite[np.isfinite(finite)].sum()),
        "em_iterations": it,
        "restarts": restarts,
    }
    return best, info


def _ratio(num: np.ndarray, den: np.ndarray, old: np.ndarray) -> np.ndarray:
    return np.where(den > 1e-9, num / np.maximum(den, 1e-12), old)


def predict_chains(chains: Chains, p: BKTParams) -> np.ndarray:
    """P(correct) at every chain position, from the chain's earlier observations only."""
    obs, length, s = chains.obs, chains.length, chains.skill
    n, width = obs.shape
    out = np.zeros((n, width))
    known = p.init[s].copy()
    T, F, G, S = p.learn[s], p.forget[s], p.guess[s], p.slip[s]
    for t in range(width):
        m = _active(length, t + 1)
        k = known[:m]
        pc = k * (1 - S[:m]) + (1 - k) * G[:m]
        out[:m, t] = pc
        right = obs[:m, t] > 0.5
        post = np.where(right, k * (1 - S[:m]) / pc, k * S[:m] / (1 - pc))
        known[:m] = post * (1 - F[:m]) + (1 - post) * T[:m]
    return out


def predict_rows(frame: pd.DataFrame, vocab: Vocab, p: BKTParams) -> np.ndarray:
    """P(correct) of every row of ``frame`` (mean over the attempt's skills)."""
    total = np.zeros(len(frame))
    count = np.zeros(len(frame))
    for chains in build_chains(frame, vocab):
        probs = predict_chains(chains, p)
        keep = chains.rows >= 0
        total += np.bincount(chains.rows[keep], weights=probs[keep], minlength=len(frame))
        count += np.bincount(chains.rows[keep], minlength=len(frame))
    return total / np.maximum(count, 1)


def update_known(known: float, correct: bool, skill: int, p: BKTParams) -> float:
    """One learner's P(known) of ``skill`` after an answer."""
    pc = known * (1 - p.slip[skill]) + (1 - known) * p.guess[skill]
    post = known * (1 - p.slip[skill]) / pc if correct else known * p.slip[skill] / (1 - pc)
    return float(post * (1 - p.forget[skill]) + (1 - post) * p.learn[skill])


def p_correct(known: float, skill: int, p: BKTParams) -> float:
    return float(known * (1 - p.slip[skill]) + (1 - known) * p.guess[skill])

"""The ``knowledge_tracing`` family: will this learner answer the next item correctly?

Training data is a table of attempts (one row per answer: learner, item and/or skills, 0/1
answer, time) — what :func:`~learnloop.families.knowledge_tracing.data.normalize_table` reads,
which is also what the loop's datasets hold for this family (the prediction inputs joined with
the answers given as feedback). Three models: ``dkt``, ``attentive`` and ``bkt`` (see ``nets``
and ``bkt``).

Validation: with a split column (the loop's time split), 'valid' attempts are scored, predicted
from all the learner's earlier attempts; otherwise ``valid_fraction`` of the learners are held
out. Networks stop early on validation AUC and keep their best epoch.

Serving: an input with ``history`` is predicted statelessly; one with only ``learner_id`` uses
the learner's state in this loaded version (:mod:`learners`), updated one step per answer by
:meth:`KnowledgeTracingFamily.observe`. Unknown items and skills are predicted with the
cold-start embedding and listed in ``cold_start``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from learnloop.core.errors import Conflict, InvalidInput, Issue, StorageError
from learnloop.core.family import FitContext, FitResult, ModelFamily
from learnloop.families.knowledge_tracing.data import SKILL_SEP, normalize_table
from learnloop.families.knowledge_tracing.encoding import RecencyState, Vocab, sequences
from learnloop.families.knowledge_tracing.learners import LearnerState, LearnerStates
from learnloop.families.knowledge_tracing.schemas import (
    Attempt,
    KnowledgeTracingInput,
    KnowledgeTracingOutput,
    KnowledgeTracingParams,
)

META_FILE = "knowledge_tracing.json"
WEIGHTS_FILE = "weights.pt"
MIN_ATTEMPTS = 10


@dataclass
class NetCheckpoint:
    """A paused fit: the weights of the members already trained and the current one's state."""

    finished: list[bytes]
    current: Any


def _scored_only(batch: Any) -> Any:
    """The sequences of ``batch`` with at least one scored attempt."""
    return batch.take(np.flatnonzero((batch.mask & batch.score).any(axis=1)))


def _torch() -> Any:
    import torch

    return torch


class KnowledgeTracingFamily(
    ModelFamily[KnowledgeTracingParams, KnowledgeTracingInput, KnowledgeTracingOutput]
):
    """Predicts a learner's next answer (DKT, attentive, BKT); keeps learner states to serve."""

    name = "knowledge_tracing"
    Params = KnowledgeTracingParams
    Input = KnowledgeTracingInput
    Output = KnowledgeTracingOutput
    description = "Knowledge tracing: DKT, an attentive (AKT-style) model and BKT."
    cacheable: ClassVar[bool] = False  # stateful predictions: never serve from a response cache

    def __init__(self, params: KnowledgeTracingParams | Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        self.vocab: Vocab | None = None
        self.net: Any = None
        self.bkt: Any = None
        self.metrics: dict[str, float] = {}
        self.skill_stats: dict[str, dict[str, float]] = {}
        self.item_stats: dict[str, dict[str, float]] = {}
        self.item_skills: dict[str, str] = {}
        self.learners = LearnerStates(self._new_state, self._apply, self.params.max_learners)

    # -- schema -----------------------------------------------------------------------------

    @classmethod
    def validate_frame(
        cls, frame: pd.DataFrame, params: KnowledgeTracingParams | None = None
    ) -> list[Issue]:
        issues = super().validate_frame(frame, params)
        if issues:
            return issues
        p = params or KnowledgeTracingParams()
        columns = set(map(str, frame.columns))
        if p.learner_column not in columns and "subject_id" not in columns:
            issues.append(Issue(p.learner_column, "learner column not found"))
        if p.target not in columns:
            issues.append(Issue(p.target, "answer column not found"))
        if not columns & {"skill_ids", "skill_id", "item_id"}:
            issues.append(Issue("skill_ids", "need a skill_ids (or skill_id) or item_id column"))
        if p.split_column is not None and p.split_column not in columns:
            issues.append(Issue(p.split_column, "split_column not found in the data"))
        if issues:
            return issues
        try:
            table = cls._table(frame, p)
        except InvalidInput as e:
            return list(e.issues)
        if len(table) < MIN_ATTEMPTS:
            issues.append(Issue("<rows>", f"{len(table)} attempts; at least {MIN_ATTEMPTS}"))
        return issues

    @staticmethod
    def _table(frame: pd.DataFrame, p: KnowledgeTracingParams) -> pd.DataFrame:
        learner = p.learner_column if p.learner_column in frame.columns else "subject_id"
        if learner in frame.columns and "prediction_id" in frame.columns:
            # a loop dataset: stateless predictions without a learner belong to no sequence
            frame = frame[frame[learner].notna()]
        table = normalize_table(
            frame.reset_index(drop=True),
            learner_column=p.learner_column,
            target=p.target,
            order_column=p.order_column,
        )
        if p.split_column is not None and p.split_column in frame.columns:
            marks = frame[p.split_column].astype(str).to_numpy()
            table["split"] = marks[table["_row"].to_numpy()]
        return table

    # -- fitting ------------------------------------------------------------------------------

    def fit(self, data: pd.DataFrame, ctx: FitContext) -> FitResult:
        self.check_frame(data)
        p = self.params
        self._threads()
        table = self._table(data, p)
        if p.split_column is not None:
            train_rows = (table["split"] != "valid").to_numpy()
            valid_rows = ~train_rows
            if not valid_rows.any() or not train_rows.any():
                raise InvalidInput("bad split", [Issue(p.split_column, "need train and valid")])
        else:
            learners = table["learner_id"].unique()
            rng = np.random.default_rng(p.seed)
            held = set(rng.choice(learners, max(1, int(len(learners) * p.valid_fraction)), False))
            if len(held) == len(learners):
                held = set(list(held)[:-1]) if len(held) > 1 else held
            valid_rows = table["learner_id"].isin(held).to_numpy()
            train_rows = ~valid_rows
        use_items = p.use_items == "yes" or (
            p.use_items == "auto" and table["item_id"].notna().mean() > 0.5
        )
        self.vocab = Vocab.build(table[train_rows], use_items=use_items)
        self._statistics(table[train_rows])
        if p.model == "bkt":
            return self._fit_bkt(table, train_rows, valid_rows, ctx)
        return self._fit_net(table, train_rows, valid_rows, ctx)

    def _threads(self) -> None:
        torch = _torch()
        threads = self.params.threads or min(os.cpu_count() or 1, 8)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)

    def _build_net(self, kind: str | None = None) -> Any:
        from learnloop.families.knowledge_tracing.nets import DKT, Attentive, Ensemble

        p, v = self.params, self._vocab()
        kind = kind or p.model
        if kind == "ensemble":
            return Ensemble([self._build_net(k) for k in p.members])
        dropout = p.effective_dropout(kind)
        if kind == "dkt":
            return DKT(
                v.n_skills, v.n_items, embed_dim=p.embed_dim, hidden=p.hidden, layers=p.layers,
                cell=p.cell, dropout=dropout, use_items=v.uses_items, use_recency=p.use_recency,
            )  # fmt: skip
        return Attentive(
            v.n_skills, v.n_items, d_model=p.d_model, heads=p.heads, blocks=p.blocks, d_ff=p.d_ff,
            dropout=dropout, use_items=v.uses_items, use_recency=p.use_recency,
        )  # fmt: skip

    def _fit_net(
        self, table: pd.DataFrame, train_rows: np.ndarray, valid_rows: np.ndarray, ctx: FitContext
    ) -> FitResult:
        from learnloop.families.knowledge_tracing import training

        p, v = self.params, self._vocab()
        if p.split_column is not None:
            train_batch = _scored_only(sequences(table, v, p.max_len, score=train_rows))
            valid_batch = _scored_only(sequences(table, v, p.max_len, score=valid_rows))
        else:
            train_batch = sequences(table[train_rows], v, p.max_len)
            valid_batch = sequences(table[valid_rows], v, p.max_len)
        kinds = list(p.members) if p.model == "ensemble" else [p.model]
        resumed = ctx.load_checkpoint()
        done: list[bytes] = []
        state: training.TrainState | None = None
        if isinstance(resumed, NetCheckpoint):
            done, state = list(resumed.finished), resumed.current
        elif isinstance(resumed, training.TrainState):
            state = resumed
        nets, states = [], []
        for i, kind in enumerate(kinds):
            _torch().manual_seed(p.seed + i)
            net = self._build_net(kind)
            if i < len(done):  # trained before a pause
                net.load_state_dict(training.load_bytes(done[i]))
                net.eval()
                nets.append(net)
                continue
            config = training.TrainConfig(
                epochs=p.epochs, batch_size=p.batch_size, learning_rate=p.learning_rate,
                weight_decay=p.weight_decay, l2_items=p.l2_items if v.uses_items else 0.0,
                patience=p.patience, grad_clip=p.grad_clip, seed=p.seed + i,
                max_seconds=p.max_train_seconds,
            )  # fmt: skip

            def on_epoch(st: training.TrainState, metrics: dict[str, float], i: int = i) -> None:
                ctx.save_checkpoint(NetCheckpoint(list(done), st), len(done) * p.epochs + st.epoch)
                shown = {
                    **metrics,
                    **{k[6:]: x for k, x in metrics.items() if k.startswith("valid_")},
                }
                where = f"member {i + 1}/{len(kinds)} " if len(kinds) > 1 else ""
                ctx.progress(
                    (i + st.epoch / p.epochs) / len(kinds), f"{where}epoch {st.epoch}", shown
                )
                ctx.check_control()

            state = training.train(
                net, train_batch, valid_batch, config, state=state, on_epoch=on_epoch
            )
            states.append(state)
            done.append(training.dump_bytes(net.state_dict()))
            nets.append(net)
            state = None
        if p.model == "ensemble":
            from learnloop.families.knowledge_tracing.nets import Ensemble

            self.net = Ensemble(nets).eval()
        else:
            self.net = nets[0]
        last = states[-1] if states else training.TrainState()
        y, prob = training.scored(valid_batch, training.predict_batch(self.net, valid_batch))
        self.metrics = training.binary_metrics(y, prob)
        ctx.progress(1.0, "done")
        info = {
            "best_epoch": last.best_epoch + 1,
            "epochs_run": last.epoch,
            "train_seconds": sum(st.seconds for st in states),
            "members": [
                {"model": k, "best_epoch": st.best_epoch + 1, "valid_auc": st.best_auc}
                for k, st in zip(kinds[len(kinds) - len(states) :], states, strict=True)
            ],
            "train_sequences": len(train_batch),
            "valid_sequences": len(valid_batch),
            "skills": len(v.skills),
            "items": len(v.items),
            "parameters": sum(int(t.numel()) for t in self.net.parameters()),
        }
        history = [h for st in states for h in st.history]
        return FitResult(metrics=self.metrics, history=history, info=info)

    def _fit_bkt(
        self, table: pd.DataFrame, train_rows: np.ndarray, valid_rows: np.ndarray, ctx: FitContext
    ) -> FitResult:
        import time

        from learnloop.families.knowledge_tracing import bkt, training

        p, v = self.params, self._vocab()
        started = time.perf_counter()
        chains = bkt.build_chains(table[train_rows].reset_index(drop=True), v)
        resumed = ctx.load_checkpoint()
        state = resumed if isinstance(resumed, bkt.FitState) else None
        if state is not None:
            ctx.progress(state.iteration / p.em_iterations, f"resumed at EM step {state.iteration}")

        def on_checkpoint(st: bkt.FitState) -> None:
            ctx.save_checkpoint(st, st.iteration)
            ctx.progress(st.iteration / p.em_iterations, f"EM step {st.iteration}")
            ctx.check_control()

        self.bkt, info = bkt.fit_bkt(
            chains, v.n_skills, forgets=p.forgets, restarts=p.restarts,
            iterations=p.em_iterations, seed=p.seed, state=state, on_checkpoint=on_checkpoint,
            every=max(1, min(10, p.em_iterations // 3)),
        )  # fmt: skip
        seconds = time.perf_counter() - started
        scope = table if p.split_column is not None else table[valid_rows]
        scored = valid_rows if p.split_column is not None else np.ones(len(scope), dtype=bool)
        prob = bkt.predict_rows(scope.reset_index(drop=True), v, self.bkt)
        y = scope["correct"].to_numpy()
        self.metrics = training.binary_metrics(y[scored], prob[scored])
        ctx.progress(1.0, "done")
        return FitResult(
            metrics=self.metrics,
            history=[{"seconds": seconds, **self.metrics}],
            info={**info, "train_seconds": seconds, "skills": len(v.skills)},
        )

    def _statistics(self, table: pd.DataFrame) -> None:
        """Per-skill and per-item success rates and counts (for insights and recommendations)."""
        rows = table.assign(skill=table["skill_ids"].str.split(SKILL_SEP)).explode("skill")
        by_skill = rows.groupby("skill")["correct"].agg(["mean", "count"])
        self.skill_stats = {
            str(k): {"rate": float(r["mean"]), "attempts": float(r["count"])}
            for k, r in by_skill.iterrows()
        }
        items = table[table["item_id"].notna()]
        by_item = items.groupby("item_id").agg(
            rate=("correct", "mean"), attempts=("correct", "size"), skills=("skill_ids", "first")
        )
        self.item_stats = {
            str(k): {"rate": float(r["rate"]), "attempts": float(r["attempts"])}
            for k, r in by_item.iterrows()
        }
        self.item_skills = {str(k): str(r["skills"]) for k, r in by_item.iterrows()}

    # -- predicting ---------------------------------------------------------------------------

    def predict(self, inputs: Sequence[KnowledgeTracingInput]) -> list[KnowledgeTracingOutput]:
        self._vocab()
        out: list[KnowledgeTracingOutput | None] = [None] * len(inputs)
        stateless = [
            i for i, x in enumerate(inputs) if x.history is not None or x.learner_id is None
        ]
        stateful = [i for i, x in enumerate(inputs) if x.history is None and x.learner_id]
        if stateless:
            for i, o in zip(
                stateless, self._predict_stateless([inputs[i] for i in stateless]), strict=True
            ):
                out[i] = o
        if stateful:
            for i, o in zip(
                stateful, self._predict_stateful([inputs[i] for i in stateful]), strict=True
            ):
                out[i] = o
        return [o for o in out if o is not None]

    def _query(self, x: KnowledgeTracingInput | Attempt) -> tuple[list[int], int, list[str]]:
        v = self._vocab()
        skills = x.skill_ids or self._item_skills(x.item_id)
        idx, unknown = v.skill_indices(skills)
        item, item_unknown = v.item_index(x.item_id)
        cold = [f"skill:{s}" for s in unknown]
        if item_unknown:
            cold.insert(0, f"item:{x.item_id}")
        if not skills:
            cold.append("skill:<none>")
        return idx + [0] * (v.max_skills - len(idx)), item, cold

    def _attempt_frame(self, attempts: Sequence[Attempt], learner: str) -> pd.DataFrame:
        rows = []
        for k, a in enumerate(attempts):
            skills = a.skill_ids or self._item_skills(a.item_id)
            rows.append(
                {
                    "learner_id": learner,
                    "item_id": a.item_id,
                    "skill_ids": SKILL_SEP.join(skills or []),
                    "correct": int(a.correct),
                    "order": k,
                }
            )
        return pd.DataFrame(
            rows, columns=["learner_id", "item_id", "skill_ids", "correct", "order"]
        )

    def _predict_stateless(
        self, inputs: Sequence[KnowledgeTracingInput]
    ) -> list[KnowledgeTracingOutput]:
        p = self.params
        frames = []
        window = p.max_len - 1
        for k, x in enumerate(inputs):
            past = list(x.history or [])[-window:] if p.model != "bkt" else list(x.history or [])
            query = Attempt(item_id=x.item_id, skill_ids=x.skill_ids, correct=0)
            frames.append(self._attempt_frame([*past, query], f"i{k}"))
        table = pd.concat(frames, ignore_index=True)
        table["correct"] = table["correct"].astype(np.int8)
        last = table.groupby("learner_id", sort=False).tail(1).index.to_numpy()
        probs = self._table_probabilities(table)[last]
        outs = []
        for k, x in enumerate(inputs):
            _, _, cold = self._query(x)
            # replaying a history for mastery costs a step per attempt: only when asked
            mastery = self._mastery_stateless(x) if x.include_mastery else {}
            outs.append(
                self._output(float(probs[k]), mastery, cold, len(x.history or []), "stateless")
            )
        return outs

    def _table_probabilities(self, table: pd.DataFrame, chunk: int | None = None) -> np.ndarray:
        """P(correct) of every row of an attempts table, from the learner's rows before it.

        With ``chunk``, histories restart every ``chunk`` attempts (the benchmark protocol);
        without, each learner's rows are one sequence."""
        v = self._vocab()
        if self.params.model == "bkt":
            from learnloop.families.knowledge_tracing.bkt import predict_rows

            return predict_rows(table.reset_index(drop=True), v, self.bkt)
        from learnloop.families.knowledge_tracing.training import predict_batch

        width = chunk or max(self.params.max_len, int(table.groupby("learner_id").size().max()))
        batch = sequences(table, v, width)
        probs = predict_batch(self.net, batch, batch_size=128)
        out = np.zeros(len(table))
        keep = batch.mask
        out[batch.rows[keep]] = probs[keep]
        return out

    def _mastery_stateless(self, x: KnowledgeTracingInput) -> dict[str, float]:
        state = self._new_state("<stateless>")
        self._apply(state, list(x.history or [])[-(self.params.max_len - 1) :])
        return self._mastery(state, None)

    def _item_skills(self, item: str | None) -> list[str]:
        known = self.item_skills.get(item or "")
        return known.split(SKILL_SEP) if known else []

    def _output(
        self, prob: float, mastery: dict[str, float], cold: list[str], n: int, mode: str
    ) -> KnowledgeTracingOutput:
        return KnowledgeTracingOutput(
            probability=round(prob, 6),
            prediction=int(prob >= 0.5),
            mastery=mastery,
            cold_start=cold,
            history_length=n,
            learner_state=mode,  # type: ignore[arg-type]
        )

    def _predict_stateful(
        self, inputs: Sequence[KnowledgeTracingInput]
    ) -> list[KnowledgeTracingOutput]:
        outs: list[KnowledgeTracingOutput | None] = [None] * len(inputs)
        # every network answers a batch in one pass over the learners' states; BKT and requests
        # for the mastery of every skill (a row per skill) go learner by learner
        batched = [
            i for i, x in enumerate(inputs) if self.params.model != "bkt" and not x.include_mastery
        ]
        if batched:
            done = self._predict_states([inputs[i] for i in batched])
            for i, o in zip(batched, done, strict=True):
                outs[i] = o
        for i, x in enumerate(inputs):
            if outs[i] is not None:
                continue
            state, known = self.learners.get(x.learner_id or "")
            with state.lock:
                skills, item, cold = self._query(x)
                prob = self._step_probabilities(state, [skills], [item])[0]
                wanted = (
                    None if x.include_mastery else (x.skill_ids or self._item_skills(x.item_id))
                )
                mastery = self._mastery(state, wanted)
                n = state.answered
            outs[i] = self._output(prob, mastery, cold, n, "stored" if known else "new")
        return [o for o in outs if o is not None]

    def _predict_states(
        self, inputs: Sequence[KnowledgeTracingInput]
    ) -> list[KnowledgeTracingOutput]:
        """Stateful predictions of many learners in one pass of the network.

        Each input needs one row for its attempt and one per skill of the attempt (mastery: a
        typical item of the skill); equal rows of one learner are computed once. A learner's
        state is snapshotted under its lock (a step replaces tensors, never changes them), so
        answers arriving meanwhile are either wholly in a prediction or not at all."""
        torch = _torch()
        v = self._vocab()
        pad = [0] * (v.max_skills - 1)
        snaps: list[Any] = []
        row_of: dict[tuple[int, tuple[int, ...], int], int] = {}
        row_skills: list[tuple[int, ...]] = []
        row_items: list[int] = []
        row_state: list[int] = []
        recency: list[np.ndarray] = []
        plans = []
        for k, x in enumerate(inputs):
            state, known = self.learners.get(x.learner_id or "")
            idx, item, cold = self._query(x)
            names = [s for s in (x.skill_ids or self._item_skills(x.item_id)) if s in v.skills]
            keys = [(tuple(idx), item)] + [((v.skills[s], *pad), 0) for s in names]
            with state.lock:
                snaps.append(state.step.clone())
                answered = state.answered
                features = state.counters.features(
                    np.zeros(len(keys), dtype=np.int64), np.asarray([key[0][0] for key in keys])
                )
            rows = []
            for key, f in zip(keys, features, strict=True):
                found = row_of.setdefault((k, *key), len(row_skills))
                if found == len(row_skills):
                    row_skills.append(key[0])
                    row_items.append(key[1])
                    row_state.append(k)
                    recency.append(f)
                rows.append(found)
            plans.append((rows, names, cold, answered, known))
        probs: list[float] = []
        chunk = 512
        with torch.no_grad():
            for s in range(0, len(row_skills), chunk):
                part = slice(s, s + chunk)
                rec = torch.from_numpy(np.stack(recency[part])) if self.params.use_recency else None
                logits = self.net.step_logits_many(
                    [snaps[i] for i in row_state[part]],
                    torch.tensor(row_skills[part], dtype=torch.long),
                    torch.tensor(row_items[part], dtype=torch.long),
                    rec,
                )
                probs.extend(torch.sigmoid(logits).tolist())
        outs = []
        for rows, names, cold, answered, known in plans:
            mastery = {s: round(probs[r], 6) for s, r in zip(names, rows[1:], strict=True)}
            outs.append(
                self._output(probs[rows[0]], mastery, cold, answered, "stored" if known else "new")
            )
        return outs

    # -- learner state ------------------------------------------------------------------------

    def _new_state(self, learner_id: str) -> LearnerState:
        v = self._vocab()
        state = LearnerState(learner_id)
        if self.params.model == "bkt":
            state.step = self.bkt.init.copy()
        else:
            from learnloop.families.knowledge_tracing.nets import StepState

            state.step = StepState()
        state.counters = RecencyState.empty((1,), v.n_skills)
        return state

    def _apply(self, state: LearnerState, attempts: Sequence[Attempt]) -> None:
        """Advance ``state`` by answered ``attempts`` (one step each)."""
        if not attempts:
            return
        torch = _torch()
        for a in attempts:
            skills, item, _ = self._query(a)
            if self.params.model == "bkt":
                from learnloop.families.knowledge_tracing.bkt import update_known

                for s in skills:
                    if s:
                        state.step[s] = update_known(
                            float(state.step[s]), bool(a.correct), s, self.bkt
                        )
            else:
                with torch.no_grad():
                    self.net.advance(
                        state.step,
                        torch.tensor(skills, dtype=torch.long),
                        torch.tensor(item, dtype=torch.long),
                        torch.tensor(float(a.correct)),
                    )
                    if hasattr(self.net, "trim"):
                        self.net.trim(state.step, self.params.max_len - 1)
            state.counters.update(
                np.zeros(1, dtype=np.int64),
                np.asarray([skills[0]]),
                np.asarray([float(a.correct)], dtype=np.float32),
                np.ones(1, dtype=bool),
            )
            state.recent.append(a)
            state.answered += 1

    def _step_probabilities(
        self, state: LearnerState, skills: list[list[int]], items: list[int]
    ) -> list[float]:
        if self.params.model == "bkt":
            from learnloop.families.knowledge_tracing.bkt import p_correct

            out = []
            for ss in skills:
                present = [s for s in ss if s]
                out.append(
                    float(np.mean([p_correct(float(state.step[s]), s, self.bkt) for s in present]))
                )
            return out
        torch = _torch()
        first = np.asarray([ss[0] for ss in skills])
        recency = state.counters.features(np.zeros(len(first), dtype=np.int64), first)
        out: list[float] = []
        chunk = 512  # the attentive model expands the history per candidate
        with torch.no_grad():
            for s in range(0, len(skills), chunk):
                logits = self.net.step_logits(
                    state.step,
                    torch.tensor(skills[s : s + chunk], dtype=torch.long),
                    torch.tensor(items[s : s + chunk], dtype=torch.long),
                    torch.from_numpy(recency[s : s + chunk]) if self.params.use_recency else None,
                )
                out.extend(torch.sigmoid(logits).tolist())
        return out

    def _mastery(self, state: LearnerState, skills: Sequence[str] | None) -> dict[str, float]:
        """P(correct) on a typical item of each skill in ``skills`` (all when None)."""
        v = self._vocab()
        names = list(v.skills) if skills is None else [s for s in skills if s in v.skills]
        if not names:
            return {}
        if self.params.model == "bkt":
            return {s: round(float(state.step[v.skills[s]]), 6) for s in names}
        idx = [[v.skills[s]] + [0] * (v.max_skills - 1) for s in names]
        probs = self._step_probabilities(state, idx, [0] * len(idx))
        return {s: round(float(q), 6) for s, q in zip(names, probs, strict=True)}

    def observe(self, learner_id: str, attempts: Sequence[Attempt]) -> None:
        """Ingest answered attempts of a learner: the next prediction sees them (one step each)."""
        self._vocab()
        self.learners.observe(learner_id, attempts)

    def learner_snapshot(self, learner_id: str) -> tuple[LearnerState, bool]:
        self._vocab()
        return self.learners.get(learner_id)

    # -- evaluation -----------------------------------------------------------------------------

    def evaluate(self, data: pd.DataFrame) -> dict[str, float]:
        from learnloop.families.knowledge_tracing.training import binary_metrics

        self._vocab()
        table = self._table(data, self.params)
        probs = self._table_probabilities(table, self.params.max_len)
        y = table["correct"].to_numpy()
        if self.params.split_column is not None and "split" in table.columns:
            keep = (table["split"] == "valid").to_numpy()
            if keep.any():
                return binary_metrics(y[keep], probs[keep])
        return binary_metrics(y, probs)

    def predict_table(self, data: pd.DataFrame) -> pd.DataFrame:
        """The attempts of ``data`` (normalized) with each one's predicted probability."""
        table = self._table(data, self.params)
        table["probability"] = self._table_probabilities(table, self.params.max_len)
        return table

    # -- explanations ---------------------------------------------------------------------------

    def explain_inputs(self, inputs: Sequence[KnowledgeTracingInput]) -> dict[str, Any]:
        """Attributions to past attempts, with the method and unit (the explain route's body)."""
        from learnloop.families.knowledge_tracing.explain import attributions

        found = [attributions(self, x) for x in inputs]
        return {
            "method": found[0]["method"] if found else None,
            "explanations": found,
        }

    def explain(self, inputs: Sequence[KnowledgeTracingInput]) -> list[dict[str, float]]:
        from learnloop.families.knowledge_tracing.explain import attributions

        return [dict(attributions(self, x)["by_attempt"]) for x in inputs]

    # -- persistence ----------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        v = self._vocab()
        meta: dict[str, Any] = {
            "params": self.params.model_dump(mode="json"),
            "vocab": v.to_json(),
            "metrics": self.metrics,
            "skill_stats": self.skill_stats,
            "item_stats": self.item_stats,
            "item_skills": self.item_skills,
        }
        if self.params.model == "bkt":
            meta["bkt"] = self.bkt.to_json()
        else:
            _torch().save(self.net.state_dict(), path / WEIGHTS_FILE)
        (path / META_FILE).write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Self:
        try:
            meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
            model = cls(meta["params"])
            model.vocab = Vocab.from_json(meta["vocab"])
            model.metrics = meta.get("metrics", {})
            model.skill_stats = meta.get("skill_stats", {})
            model.item_stats = meta.get("item_stats", {})
            model.item_skills = meta.get("item_skills", {})
            if model.params.model == "bkt":
                from learnloop.families.knowledge_tracing.bkt import BKTParams

                model.bkt = BKTParams.from_json(meta["bkt"])
            else:
                torch = _torch()
                model._threads()
                model.net = model._build_net()
                model.net.load_state_dict(torch.load(path / WEIGHTS_FILE, weights_only=True))
                model.net.eval()
        except (OSError, KeyError, ValueError, RuntimeError) as e:
            raise StorageError(f"cannot load a knowledge-tracing model from {path}: {e!r}") from e
        return model

    def _vocab(self) -> Vocab:
        if self.vocab is None:
            raise Conflict(f"the {self.name} model is not fitted: call fit() or load() first")
        return self.vocab

    def describe(self) -> dict[str, Any]:
        if self.vocab is None:
            return {"model": self.params.model}
        return {
            "model": self.params.model,
            "skills": len(self.vocab.skills),
            "items": len(self.vocab.items),
            "uses_items": self.vocab.uses_items,
            "max_skills_per_attempt": self.vocab.max_skills,
            "learners_in_memory": len(self.learners),
            "validation": self.metrics,
        }

    # -- contract-test helpers ------------------------------------------------------------------

    @classmethod
    def test_params(cls) -> list[dict[str, Any]]:
        small = {"epochs": 2, "batch_size": 8, "threads": 1, "max_len": 20}
        return [
            {"model": "dkt", "embed_dim": 8, "hidden": 8, **small},
            {"model": "attentive", "d_model": 8, "heads": 2, "d_ff": 16, **small},
            {"model": "bkt", "restarts": 2, "em_iterations": 5},
            {
                "model": "ensemble",
                "members": ["dkt", "attentive"],
                "embed_dim": 8,
                "hidden": 8,
                "d_model": 8,
                "heads": 2,
                "d_ff": 16,
                **small,
            },  # fmt: skip
        ]

    @classmethod
    def example_inputs(cls, frame: pd.DataFrame) -> list[dict[str, Any]]:
        """Items of ``frame`` to predict: stateless (with each learner's earlier attempts as
        history) and stateful (learner id only)."""
        out: list[dict[str, Any]] = []
        for learner, rows in frame.groupby("learner_id", sort=False):
            history = [
                {"item_id": r.item_id, "skill_ids": [r.skill_ids], "correct": int(r.correct)}
                for r in rows.iloc[:5].itertuples()
            ]
            last = rows.iloc[5]
            out.append({"item_id": last["item_id"], "history": history})
            out.append({"learner_id": str(learner), "item_id": last["item_id"]})
            if len(out) >= 20:
                break
        return out

    @classmethod
    def example_data(cls, rows: int = 200, seed: int = 0) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Simulated learners (see ``synthetic``): 20 attempts each, about ``rows`` in all."""
        from learnloop.families.knowledge_tracing.synthetic import generate_synthetic_data

        learners = max(rows // 20, 4)
        data = generate_synthetic_data(
            learners, num_items=20, num_skills=3, attempts=20, seed=seed
        ).interactions
        return data.drop(columns=["p_true", "order"]), {"model": "dkt", "epochs": 2}

"""The two networks: DKT (recurrent) and an attentive model in the AKT line.

Both take padded batches — ``skills`` [B, T, K] (several skills per attempt are averaged),
``items`` [B, T] (0 when the model has no item ids), ``correct`` [B, T] — and return one logit per
position: the logit at ``t`` predicts attempt ``t`` from attempts ``< t`` only (the answer at ``t``
is never an input to its own prediction). Both also run *one step at a time* for serving
(:class:`StepState`): a stateful prediction costs one step, not a replay of the history, and
``step_logits_many`` takes one candidate for each of many learners' states in one pass (the
batched stateful path of serving).

**DKT** (Piech et al., 2015): an LSTM (or GRU) over embedded (skill, answer) pairs; the output
layer gives one logit per skill — the learner's mastery of every skill at once — and, with item
ids, a learned difficulty per item is subtracted (a Rasch term).

**Attentive** (after AKT, Ghosh et al., 2020): a question encoder and a knowledge encoder
(causal self-attention over questions and over (question, answer) pairs) and a knowledge
retriever in which each question attends to strictly earlier interactions. Attention is
*monotonic*: scores decay exponentially with a context-aware distance, with a learned rate per
head. With item ids the embeddings are Rasch-style: ``x = c_s + μ_q·d_s`` and
``y = c_s + e_r + μ_q·(d_s + f_r)``, with an L2 penalty on the scalar difficulties ``μ_q``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def mean_skill_embedding(table: nn.Embedding, skills: Tensor) -> Tensor:
    """Mean of the embeddings of the (non-padding) skills of each attempt: [..., K] → [..., d]."""
    emb = table(skills)
    present = (skills > 0).unsqueeze(-1).to(emb.dtype)
    return (emb * present).sum(-2) / present.sum(-2).clamp(min=1.0)


class RecencyHead(nn.Module):
    """A small additive term from the counters about the attempt's skill (see ``encoding``)."""

    def __init__(self, features: int = 4, hidden: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, recency: Tensor) -> Tensor:
        return self.net(recency).squeeze(-1)


def add_recency(logit: Tensor, head: nn.Module | None, recency: Tensor | None) -> Tensor:
    if head is None or recency is None:
        return logit
    return logit + head(recency)


@dataclass
class StepState:
    """One learner's state for stepwise prediction (the network decides what it holds).

    Tensors are never changed in place (a step replaces them), so :meth:`clone` copies only
    the containers."""

    tensors: dict[str, Any] = field(default_factory=dict)
    length: int = 0

    def clone(self) -> StepState:
        def copy(value: Any) -> Any:
            if isinstance(value, StepState):
                return value.clone()
            if isinstance(value, list):
                return [copy(v) for v in value]
            return value

        return StepState({k: copy(v) for k, v in self.tensors.items()}, self.length)


class DKT(nn.Module):
    def __init__(
        self,
        n_skills: int,
        n_items: int,
        *,
        embed_dim: int,
        hidden: int,
        layers: int,
        cell: str,
        dropout: float,
        use_items: bool,
        use_recency: bool = True,
    ) -> None:
        super().__init__()
        self.use_items = use_items
        self.recency = RecencyHead() if use_recency else None
        self.interaction = nn.Embedding(2 * n_skills, embed_dim, padding_idx=0)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(
            embed_dim, hidden, num_layers=layers, batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
        )  # fmt: skip
        self.start = nn.Parameter(torch.zeros(hidden))
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, n_skills)
        self.item_difficulty = nn.Embedding(n_items, 1) if use_items else None
        if self.item_difficulty is not None:
            nn.init.zeros_(self.item_difficulty.weight)
        self.cell = cell

    def inputs(self, skills: Tensor, correct: Tensor) -> Tensor:
        code = skills * 2 + correct.long().unsqueeze(-1) * (skills > 0).long()
        return mean_skill_embedding(self.interaction, code)

    def _readout(self, hidden: Tensor, skills: Tensor, items: Tensor) -> Tensor:
        """Logit of the attempt on ``skills``/``items`` given states ``hidden`` [..., H]."""
        per_skill = self.out(self.drop(hidden))  # [..., S]
        picked = per_skill.gather(-1, skills)
        present = (skills > 0).to(picked.dtype)
        logit = (picked * present).sum(-1) / present.sum(-1).clamp(min=1.0)
        if self.item_difficulty is not None:
            logit = logit - self.item_difficulty(items).squeeze(-1)
        return logit

    def forward(
        self,
        skills: Tensor,
        items: Tensor,
        correct: Tensor,
        recency: Tensor | None = None,
        embedded: Tensor | None = None,
    ) -> Tensor:
        x = self.inputs(skills, correct) if embedded is None else embedded
        h, _ = self.rnn(x)
        start = self.start.expand(h.shape[0], 1, -1)
        before = torch.cat([start, h[:, :-1]], dim=1)  # state after attempts < t
        return add_recency(self._readout(before, skills, items), self.recency, recency)

    def embed(self, skills: Tensor, items: Tensor, correct: Tensor) -> Tensor:
        """The inputs that carry answers (what attributions are computed over)."""
        return self.inputs(skills, correct)

    def l2_penalty(self) -> Tensor:
        if self.item_difficulty is None:
            return torch.zeros(())
        return (self.item_difficulty.weight**2).sum()

    # -- stepwise --------------------------------------------------------------------------

    def _hidden(self, state: StepState) -> Tensor:
        found = state.tensors.get("h")
        return self.start if found is None else found

    def step_logits(
        self, state: StepState, skills: Tensor, items: Tensor, recency: Tensor | None = None
    ) -> Tensor:
        """Logits of candidate attempts ``skills`` [C, K], ``items`` [C] at the learner's state."""
        h = self._hidden(state).expand(skills.shape[0], -1)
        return add_recency(self._readout(h, skills, items), self.recency, recency)

    def step_logits_many(
        self,
        states: Sequence[StepState],
        skills: Tensor,
        items: Tensor,
        recency: Tensor | None = None,
    ) -> Tensor:
        """One candidate per state: ``skills`` [N, K], ``items`` [N] at ``states[i]``."""
        h = torch.stack([self._hidden(s) for s in states])
        return add_recency(self._readout(h, skills, items), self.recency, recency)

    def mastery_logits(self, state: StepState) -> Tensor:
        return self.out(self._hidden(state))

    def advance(self, state: StepState, skills: Tensor, item: Tensor, correct: Tensor) -> None:
        """Add one answered attempt (``skills`` [K], ``correct`` scalar) to ``state``."""
        x = self.inputs(skills.view(1, 1, -1), correct.view(1, 1)).view(1, 1, -1)
        memory = state.tensors.get("memory")
        out, memory = self.rnn(x, memory)
        state.tensors["memory"] = memory
        state.tensors["h"] = out[0, -1]
        state.length += 1


class MonotonicAttention(nn.Module):
    """Multi-head attention with AKT's exponential decay over context-aware distances.

    Queries at positions ``q_pos`` see keys at positions ``k_pos`` that are earlier
    (``strict``) or earlier-or-equal; keys must be in increasing position order. A query row
    with no visible key returns zeros (AKT's zero padding of the first retriever row).
    """

    def __init__(self, d_model: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.d_k = heads, d_model // heads
        self.k_linear = nn.Linear(d_model, d_model)  # shared by queries and keys (kq_same)
        self.v_linear = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.gammas = nn.Parameter(torch.zeros(heads, 1, 1))
        nn.init.xavier_uniform_(self.gammas)
        self.drop = nn.Dropout(dropout)

    def _split(self, x: Tensor) -> Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.d_k).transpose(1, 2)

    def forward(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        visible: Tensor,
        distance: Tensor,
        want_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """``q`` [B, Tq, d], ``k``/``v`` [B, Tk, d]; ``visible`` and ``distance`` [Tq, Tk]
        (or [B, Tq, Tk])."""
        b = q.shape[0]
        qh, kh, vh = (
            self._split(self.k_linear(q)),
            self._split(self.k_linear(k)),
            self._split(self.v_linear(v)),
        )
        scores = qh @ kh.transpose(-1, -2) / math.sqrt(self.d_k)  # [B, H, Tq, Tk]
        vis = visible if visible.dim() == 4 else visible.unsqueeze(-3)
        if vis.dim() == 3:
            vis = vis.unsqueeze(0)
        dist = distance if distance.dim() == 4 else distance.unsqueeze(-3)
        if dist.dim() == 3:
            dist = dist.unsqueeze(0)
        with torch.no_grad():
            plain = torch.softmax(scores.masked_fill(~vis, -1e32), dim=-1) * vis
            remaining = plain.sum(-1, keepdim=True) - plain.cumsum(-1)  # mass on later keys
            dist_scores = (remaining * dist).clamp(min=0.0).sqrt()
        gamma = -F.softplus(self.gammas).unsqueeze(0)
        effect = torch.exp(dist_scores * gamma).clamp(1e-5, 1e5)
        scores = (scores * effect).masked_fill(~vis, float("-inf"))
        any_visible = vis.any(-1, keepdim=True)
        weights = torch.softmax(scores.masked_fill(~any_visible, 0.0), dim=-1)
        weights = weights * any_visible
        out = self.drop(weights) @ vh  # [B, H, Tq, d_k]
        out = out.transpose(1, 2).reshape(b, -1, self.heads * self.d_k)
        return self.out(out), (weights.mean(1) if want_weights else None)


class AttentionBlock(nn.Module):
    def __init__(self, d_model: int, heads: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.attn = MonotonicAttention(d_model, heads, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, d_ff), nn.ReLU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model)
        )
        self.norm2 = nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)

    def forward(
        self, q: Tensor, k: Tensor, v: Tensor, visible: Tensor, distance: Tensor,
        want_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:  # fmt: skip
        a, w = self.attn(q, k, v, visible, distance, want_weights)
        x = self.norm1(q + self.drop(a))
        return self.norm2(x + self.drop(self.ff(x))), w


def _masks(length: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    pos = torch.arange(length, device=device)
    distance = (pos[:, None] - pos[None, :]).abs().float()
    inclusive = pos[None, :] <= pos[:, None]
    strict = pos[None, :] < pos[:, None]
    return inclusive, strict, distance


class Attentive(nn.Module):
    def __init__(
        self,
        n_skills: int,
        n_items: int,
        *,
        d_model: int,
        heads: int,
        blocks: int,
        d_ff: int,
        dropout: float,
        use_items: bool,
        use_recency: bool = True,
    ) -> None:
        super().__init__()
        self.use_items = use_items
        self.recency = RecencyHead() if use_recency else None
        self.skill = nn.Embedding(n_skills, d_model, padding_idx=0)
        self.answer = nn.Embedding(2, d_model)
        if use_items:
            self.difficulty = nn.Embedding(n_items, 1)
            nn.init.zeros_(self.difficulty.weight)
            self.skill_variation = nn.Embedding(n_skills, d_model, padding_idx=0)
            self.answer_variation = nn.Embedding(2, d_model)
        self.question_encoder = nn.ModuleList(
            AttentionBlock(d_model, heads, d_ff, dropout) for _ in range(blocks)
        )
        self.knowledge_encoder = nn.ModuleList(
            AttentionBlock(d_model, heads, d_ff, dropout) for _ in range(blocks)
        )
        self.retriever = nn.ModuleList(
            AttentionBlock(d_model, heads, d_ff, dropout) for _ in range(blocks)
        )
        self.head = nn.Sequential(
            nn.Linear(2 * d_model, d_ff), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(d_ff, d_ff // 2), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(d_ff // 2, 1),
        )  # fmt: skip

    # -- embeddings --------------------------------------------------------------------------

    def question_embedding(self, skills: Tensor, items: Tensor) -> Tensor:
        x = mean_skill_embedding(self.skill, skills)
        if self.use_items:
            x = x + self.difficulty(items) * mean_skill_embedding(self.skill_variation, skills)
        return x

    def interaction_embedding(self, skills: Tensor, items: Tensor, correct: Tensor) -> Tensor:
        r = correct.long()
        y = mean_skill_embedding(self.skill, skills) + self.answer(r)
        if self.use_items:
            variation = mean_skill_embedding(self.skill_variation, skills) + self.answer_variation(
                r
            )
            y = y + self.difficulty(items) * variation
        return y

    def l2_penalty(self) -> Tensor:
        if not self.use_items:
            return torch.zeros(())
        return (self.difficulty.weight**2).sum()

    # -- whole sequences ---------------------------------------------------------------------

    def forward(
        self,
        skills: Tensor,
        items: Tensor,
        correct: Tensor,
        recency: Tensor | None = None,
        embedded: Tensor | None = None,
        want_weights: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        x0 = self.question_embedding(skills, items)
        y0 = self.interaction_embedding(skills, items, correct) if embedded is None else embedded
        inclusive, strict, distance = _masks(skills.shape[1], skills.device)
        x = x0
        for block in self.question_encoder:
            x, _ = block(x, x, x, inclusive, distance)
        y = y0
        for block in self.knowledge_encoder:
            y, _ = block(y, y, y, inclusive, distance)
        z = x
        weights = None
        for block in self.retriever:
            z, weights = block(z, x, y, strict, distance, want_weights)
        logit = self.head(torch.cat([z, x0], dim=-1)).squeeze(-1)
        logit = add_recency(logit, self.recency, recency)
        if want_weights:
            assert weights is not None
            return logit, weights
        return logit

    # -- stepwise ----------------------------------------------------------------------------
    # The state caches every layer's outputs for the learner's past attempts (causal layers
    # never change them), so a new query attends once per layer: O(history × d) per step.

    def _cached(self, state: StepState, name: str) -> list[Tensor]:
        return state.tensors.setdefault(name, [])

    def embed(self, skills: Tensor, items: Tensor, correct: Tensor) -> Tensor:
        return self.interaction_embedding(skills, items, correct)

    def step_logits(
        self, state: StepState, skills: Tensor, items: Tensor, recency: Tensor | None = None
    ) -> Tensor:
        return add_recency(self._step(state, skills, items)[0], self.recency, recency)

    def step_weights(self, state: StepState, skills: Tensor, items: Tensor) -> Tensor | None:
        """The retriever's attention over the learner's past attempts for each candidate."""
        return self._step(state, skills, items)[2]

    def _step(
        self, state: StepState, skills: Tensor, items: Tensor
    ) -> tuple[Tensor, list[Tensor], Tensor | None]:
        """Logits of candidates ``skills`` [C, K] at the next position, their per-layer question
        encodings and the retriever's attention weights over the past [C, t]."""
        c = skills.shape[0]
        t = state.length
        x0 = self.question_embedding(skills, items)  # [C, d]
        xs_past: list[Tensor] = self._cached(state, "x")  # per layer input: [t, d]
        layers_x = [x0]
        x = x0
        for level, block in enumerate(self.question_encoder):
            past = xs_past[level] if t else x0.new_zeros(0, x0.shape[-1])
            keys = torch.cat([past.unsqueeze(0).expand(c, -1, -1), x.unsqueeze(1)], dim=1)
            vis = torch.ones(1, t + 1, dtype=torch.bool)
            dist = (t - torch.arange(t + 1)).float().view(1, -1)
            x, _ = block(x.unsqueeze(1), keys, keys, vis, dist)
            x = x.squeeze(1)
            layers_x.append(x)
        z = x
        weights = None
        if t:
            x_enc = xs_past[len(self.question_encoder)]
            y_enc = self._cached(state, "y")[len(self.knowledge_encoder)]
            vis = torch.ones(1, t, dtype=torch.bool)
            dist = (t - torch.arange(t)).float().view(1, -1)
            for block in self.retriever:
                z, weights = block(
                    z.unsqueeze(1),
                    x_enc.unsqueeze(0).expand(c, -1, -1),
                    y_enc.unsqueeze(0).expand(c, -1, -1),
                    vis,
                    dist,
                    True,
                )
                z = z.squeeze(1)
        else:
            for block in self.retriever:  # nothing to retrieve: attention output is zero
                zero = z.new_zeros(c, 1, z.shape[-1])
                empty = torch.zeros(1, 1, dtype=torch.bool)
                z, _ = block(z.unsqueeze(1), zero, zero, empty, torch.zeros(1, 1))
                z = z.squeeze(1)
        logit = self.head(torch.cat([z, x0], dim=-1)).squeeze(-1)
        return logit, layers_x, (weights.squeeze(1) if weights is not None else None)

    def step_logits_many(
        self,
        states: Sequence[StepState],
        skills: Tensor,
        items: Tensor,
        recency: Tensor | None = None,
    ) -> Tensor:
        """One candidate per state: ``skills`` [N, K], ``items`` [N] at ``states[i]``.

        The states' cached layer outputs are padded to the longest history and masked, so every
        layer runs once for the whole batch; each row sees exactly what :meth:`_step` shows it
        (its own past at its own distances, padding invisible, a fresh state's retriever empty).
        """
        n = len(states)
        x0 = self.question_embedding(skills, items)  # [N, d]
        d = x0.shape[-1]
        lengths = torch.tensor([s.length for s in states], dtype=torch.long)
        width = max(int(lengths.max()) if n else 0, 1)  # one invisible row when all are fresh
        pos = torch.arange(width)
        valid = pos.unsqueeze(0) < lengths.unsqueeze(1)  # [N, T]
        dist = (lengths.unsqueeze(1) - pos.unsqueeze(0)).clamp(min=0).float()  # [N, T]
        empty = x0.new_zeros(0, d)

        def padded(name: str, level: int) -> Tensor:  # [N, T, d]
            rows = [s.tensors[name][level] if s.length else empty for s in states]
            out = x0.new_zeros(n, width, d)
            for i, r in enumerate(rows):
                out[i, : r.shape[0]] = r
            return out

        self_key = torch.ones(n, 1, dtype=torch.bool)
        vis_q = torch.cat([valid, self_key], dim=1).unsqueeze(1)  # [N, 1, T+1]
        dist_q = torch.cat([dist, torch.zeros(n, 1)], dim=1).unsqueeze(1)
        x = x0
        for level, block in enumerate(self.question_encoder):
            keys = torch.cat([padded("x", level), x.unsqueeze(1)], dim=1)
            x = block(x.unsqueeze(1), keys, keys, vis_q, dist_q)[0].squeeze(1)
        x_enc = padded("x", len(self.question_encoder))
        y_enc = padded("y", len(self.knowledge_encoder))
        z = x
        for block in self.retriever:
            z = block(z.unsqueeze(1), x_enc, y_enc, valid.unsqueeze(1), dist.unsqueeze(1))[0]
            z = z.squeeze(1)
        logit = self.head(torch.cat([z, x0], dim=-1)).squeeze(-1)
        return add_recency(logit, self.recency, recency)

    def mastery_logits(self, state: StepState) -> Tensor:
        n = self.skill.num_embeddings
        skills = torch.arange(n).view(n, 1)
        items = torch.zeros(n, dtype=torch.long)
        return self.step_logits(state, skills, items)

    def advance(self, state: StepState, skills: Tensor, item: Tensor, correct: Tensor) -> None:
        t = state.length
        _, layers_x, _ = self._step(state, skills.view(1, -1), item.view(1))
        xs = self._cached(state, "x")
        for level, x in enumerate(layers_x):
            row = x.view(1, -1)
            if t:
                xs[level] = torch.cat([xs[level], row], dim=0)
            else:
                xs.append(row)
        y = self.interaction_embedding(skills.view(1, 1, -1), item.view(1, 1), correct.view(1, 1))
        y = y.view(1, -1)
        ys = self._cached(state, "y")
        layers_y = [y]
        for level, block in enumerate(self.knowledge_encoder):
            past = ys[level] if t else y.new_zeros(0, y.shape[-1])
            keys = torch.cat([past, y], dim=0).unsqueeze(0)
            vis = torch.ones(1, t + 1, dtype=torch.bool)
            dist = (t - torch.arange(t + 1)).float().view(1, -1)
            y, _ = block(y.unsqueeze(0), keys, keys, vis, dist)
            y = y.view(1, -1)
            layers_y.append(y)
        for level, row in enumerate(layers_y):
            if t:
                ys[level] = torch.cat([ys[level], row], dim=0)
            else:
                ys.append(row)
        state.length += 1

    def trim(self, state: StepState, window: int) -> None:
        """Keep the last ``window`` attempts (positions are relative, so nothing else moves)."""
        if state.length <= window:
            return
        for name in ("x", "y"):
            state.tensors[name] = [t[-window:] for t in state.tensors.get(name, [])]
        state.length = window


class Ensemble(nn.Module):
    """Members trained apart (own seeds, own early stopping); predictions average their logits.

    Each member keeps its own step state; explanations average the members' attributions
    (integrated gradients are additive, so they still sum to the ensemble's logit change)."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(
        self,
        skills: Tensor,
        items: Tensor,
        correct: Tensor,
        recency: Tensor | None = None,
        embedded: Tensor | None = None,
        want_weights: bool = False,
    ) -> Tensor:
        if embedded is not None or want_weights:
            raise ValueError("an ensemble is explained member by member")
        logits = []
        for m in self.members:
            out = m(skills, items, correct, recency)
            logits.append(out[0] if isinstance(out, tuple) else out)
        return torch.stack(logits).mean(0)

    def l2_penalty(self) -> Tensor:
        return torch.stack([m.l2_penalty() for m in self.members]).sum()  # type: ignore[operator]

    def _subs(self, state: StepState) -> list[StepState]:
        subs: list[StepState] = state.tensors.setdefault(
            "members", [StepState() for _ in self.members]
        )
        return subs

    def step_logits(
        self, state: StepState, skills: Tensor, items: Tensor, recency: Tensor | None = None
    ) -> Tensor:
        subs = self._subs(state)
        return torch.stack(
            [
                m.step_logits(s, skills, items, recency)  # type: ignore[operator]
                for m, s in zip(self.members, subs, strict=True)
            ]
        ).mean(0)

    def step_logits_many(
        self,
        states: Sequence[StepState],
        skills: Tensor,
        items: Tensor,
        recency: Tensor | None = None,
    ) -> Tensor:
        subs = [self._subs(s) for s in states]
        return torch.stack(
            [
                m.step_logits_many([own[k] for own in subs], skills, items, recency)  # type: ignore[operator]
                for k, m in enumerate(self.members)
            ]
        ).mean(0)

    def advance(self, state: StepState, skills: Tensor, item: Tensor, correct: Tensor) -> None:
        for m, s in zip(self.members, self._subs(state), strict=True):
            m.advance(s, skills, item, correct)  # type: ignore[operator]
        state.length += 1

    def trim(self, state: StepState, window: int) -> None:
        for m, s in zip(self.members, self._subs(state), strict=True):
            if isinstance(m, Attentive):
                m.trim(s, window)

"""Which past attempts drove a prediction.

* Networks: **integrated gradients** over the embeddings that carry the answers (DKT's
  interaction inputs, the attentive model's knowledge-encoder inputs). The baseline of each past
  attempt is the midpoint of its "right" and "wrong" embeddings, so an attempt's attribution is
  what *its answer* contributed, in logit units; they sum (up to the integration error, reported)
  to ``logit(prediction) − logit(baseline)``. The attentive model also returns the retriever's
  attention over the past attempts (mean over heads, last layer).
* BKT: **leave-one-out** — the change in P(correct) when one past attempt is removed.

The history is the request's ``history`` or, for a stateful input, the learner's recent
attempts in the loaded version (the last ``max_len − 1``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from learnloop.families.knowledge_tracing.encoding import sequences
from learnloop.families.knowledge_tracing.schemas import Attempt, KnowledgeTracingInput

if TYPE_CHECKING:
    from learnloop.families.knowledge_tracing.family import KnowledgeTracingFamily

STEPS = 32


def _label(k: int, a: Attempt) -> str:
    what = a.item_id if a.item_id is not None else "+".join(a.skill_ids or [])
    return f"{k}:{what}:{'right' if a.correct else 'wrong'}"


def history_of(family: KnowledgeTracingFamily, x: KnowledgeTracingInput) -> list[Attempt]:
    window = family.params.max_len - 1
    if x.history is not None or not x.learner_id:
        return list(x.history or [])[-window:]
    state, _ = family.learner_snapshot(x.learner_id)
    with state.lock:
        return list(state.recent)[-window:]


def attributions(family: KnowledgeTracingFamily, x: KnowledgeTracingInput) -> dict[str, Any]:
    past = history_of(family, x)
    query = Attempt(item_id=x.item_id, skill_ids=x.skill_ids, correct=0)
    if family.params.model == "bkt":
        return _leave_one_out(family, past, query)
    return _integrated_gradients(family, past, query)


def _integrated_gradients(
    family: KnowledgeTracingFamily, past: list[Attempt], query: Attempt
) -> dict[str, Any]:
    import torch

    from learnloop.families.knowledge_tracing.nets import Attentive, Ensemble

    v = family._vocab()
    table = family._attempt_frame([*past, query], "x")
    batch = sequences(table, v, len(table) + 1)
    assert batch.recency is not None
    tensors = (
        torch.from_numpy(batch.skills),
        torch.from_numpy(batch.items),
        torch.from_numpy(batch.correct),
        torch.from_numpy(batch.recency),
    )
    last = len(table) - 1
    nets = list(family.net.members) if isinstance(family.net, Ensemble) else [family.net]
    parts = [_member_ig(net, tensors, last) for net in nets]
    attr = np.mean([p[0] for p in parts], axis=0)
    logit = float(np.mean([p[1] for p in parts]))
    base_logit = float(np.mean([p[2] for p in parts]))
    weights = None
    attentive = next((n for n in nets if isinstance(n, Attentive)), None)
    if attentive is not None:
        with torch.no_grad():
            _, w = attentive(*tensors, want_weights=True)
        weights = w[0, last, :last].numpy().tolist()
    return {
        "method": "integrated_gradients",
        "unit": "logit",
        "probability": float(1 / (1 + np.exp(-logit))),
        "baseline_probability": float(1 / (1 + np.exp(-base_logit))),
        "completeness_gap": float(abs(attr.sum() - (logit - base_logit))),
        "by_attempt": {_label(k, a): round(float(attr[k]), 6) for k, a in enumerate(past)},
        "attention": None if weights is None else [round(w, 6) for w in weights],
    }


def _member_ig(net: Any, tensors: tuple[Any, ...], last: int) -> tuple[np.ndarray, float, float]:
    """Integrated gradients of one network: per-attempt attributions, logit, baseline logit."""
    import torch

    skills, items, correct, recency = tensors
    net.eval()
    with torch.no_grad():
        actual = net.embed(skills, items, correct)
        right = net.embed(skills, items, torch.ones_like(correct))
        wrong = net.embed(skills, items, torch.zeros_like(correct))
        baseline = 0.5 * (right + wrong)
    alphas = (torch.arange(STEPS, dtype=torch.float32) + 0.5) / STEPS
    path = baseline + alphas.view(-1, 1, 1) * (actual - baseline)
    path.requires_grad_(True)
    logits = net(
        skills.expand(STEPS, -1, -1), items.expand(STEPS, -1), correct.expand(STEPS, -1),
        recency.expand(STEPS, -1, -1), embedded=path,
    )  # fmt: skip
    logits[:, last].sum().backward()
    assert path.grad is not None
    grads = path.grad.mean(0, keepdim=True)
    attr = ((actual - baseline) * grads).sum(-1)[0, :last].detach().numpy()
    with torch.no_grad():
        top = net(skills, items, correct, recency)
        bottom = net(skills, items, correct, recency, embedded=baseline)
    return attr, float(top[0, last]), float(bottom[0, last])


def _leave_one_out(
    family: KnowledgeTracingFamily, past: list[Attempt], query: Attempt
) -> dict[str, Any]:
    frames = [family._attempt_frame([*past, query], "full")]
    for k in range(len(past)):
        frames.append(family._attempt_frame([*past[:k], *past[k + 1 :], query], f"w{k}"))
    table = pd.concat(frames, ignore_index=True)
    probs = family._table_probabilities(table)
    last = table.groupby("learner_id", sort=False).tail(1).index.to_numpy()
    full = float(probs[last[0]])
    deltas = full - probs[last[1:]]
    return {
        "method": "leave_one_out",
        "unit": "probability",
        "probability": full,
        "by_attempt": {_label(k, a): round(float(deltas[k]), 6) for k, a in enumerate(past)},
        "attention": None,
    }

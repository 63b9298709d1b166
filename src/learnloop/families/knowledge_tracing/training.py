"""Training the networks: minibatches of chunked sequences, Adam, early stopping on validation AUC.

One epoch is one unit of work: the fit context may pause between epochs (the checkpoint holds
the weights, the optimizer state, the best weights so far and the history).
"""

from __future__ import annotations

import copy
import io
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score, roc_auc_score
from torch import nn

from learnloop.families.knowledge_tracing.encoding import Batch


def as_tensors(batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    assert batch.recency is not None
    return (
        torch.from_numpy(batch.skills),
        torch.from_numpy(batch.items),
        torch.from_numpy(batch.correct),
        torch.from_numpy(batch.recency),
    )


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC, accuracy (threshold 0.5), log loss and the count of scored attempts."""
    out: dict[str, float] = {"n": float(len(y))}
    if len(y) == 0:
        return out
    q = np.clip(p, 1e-7, 1 - 1e-7)
    out["accuracy"] = float(accuracy_score(y, p >= 0.5))
    out["log_loss"] = float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))
    if len(np.unique(y)) == 2:
        out["auc"] = float(roc_auc_score(y, p))
    return out


@torch.no_grad()
def predict_batch(net: nn.Module, batch: Batch, batch_size: int = 64) -> np.ndarray:
    """Probabilities [N, T] for every position of ``batch`` (padding included, ignore it)."""
    net.eval()
    out = np.zeros(batch.correct.shape, dtype=np.float32)
    # longest sequences first keeps the padded width of each minibatch small
    order = np.argsort(-batch.mask.sum(axis=1), kind="stable")
    for s in range(0, len(batch), batch_size):
        idx = order[s : s + batch_size]
        part = batch.take(idx)
        skills, items, correct, recency = as_tensors(part)
        logits = net(skills, items, correct, recency)
        width = part.mask.shape[1]
        out[idx, :width] = torch.sigmoid(logits).numpy()
    return out


def scored(batch: Batch, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = batch.mask & batch.score
    return batch.correct[keep], probabilities[keep]


@dataclass
class TrainConfig:
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    l2_items: float
    patience: int
    grad_clip: float
    seed: int
    max_seconds: float | None = None


@dataclass
class TrainState:
    epoch: int = 0
    best_auc: float = -1.0
    best_epoch: int = -1
    best_weights: bytes | None = None
    weights: bytes | None = None
    optimizer: bytes | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def dump_bytes(obj: Mapping[str, Any]) -> bytes:
    """A state dict as bytes (checkpoints hold bytes, not live tensors)."""
    return _dump(obj)


def load_bytes(raw: bytes) -> Any:
    return _load(raw)


def _dump(obj: Mapping[str, Any]) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _load(raw: bytes) -> Any:
    return torch.load(io.BytesIO(raw), weights_only=True)


def train(
    net: nn.Module,
    train_batch: Batch,
    valid_batch: Batch,
    config: TrainConfig,
    *,
    state: TrainState | None = None,
    on_epoch: Callable[[TrainState, dict[str, float]], None] | None = None,
) -> TrainState:
    """Train ``net`` in place; it ends with the weights of the best validation epoch."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    optimizer = torch.optim.Adam(
        net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    state = state or TrainState()
    if state.weights is not None:
        net.load_state_dict(_load(state.weights))
    if state.optimizer is not None:
        optimizer.load_state_dict(_load(state.optimizer))
    loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
    lengths = train_batch.mask.sum(axis=1)
    while state.epoch < config.epochs:
        started = time.perf_counter()
        rng_epoch = np.random.default_rng([config.seed, state.epoch])
        net.train()
        # shuffle within buckets of similar length: less padding, still random batches
        noisy = lengths + rng_epoch.uniform(0, 20, size=len(lengths))
        order = np.argsort(noisy)
        batches = [
            order[s : s + config.batch_size] for s in range(0, len(order), config.batch_size)
        ]
        rng.shuffle(batches)  # type: ignore[arg-type]
        total, count = 0.0, 0
        for idx in batches:
            part = train_batch.take(idx)
            skills, items, correct, recency = as_tensors(part)
            keep = torch.from_numpy(part.mask & part.score)
            n = int(keep.sum())
            if n == 0:
                continue
            logits = net(skills, items, correct, recency)
            loss = loss_fn(logits[keep], correct[keep])
            objective = loss / n
            if config.l2_items:
                objective = objective + config.l2_items * net.l2_penalty()  # type: ignore[operator]
            optimizer.zero_grad(set_to_none=True)
            objective.backward()  # type: ignore[no-untyped-call]
            if config.grad_clip:
                nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
            optimizer.step()
            total += float(loss.detach())
            count += n
        y, p = scored(valid_batch, predict_batch(net, valid_batch))
        metrics = {f"valid_{k}": v for k, v in binary_metrics(y, p).items() if k != "n"}
        metrics["train_loss"] = total / max(count, 1)
        metrics["epoch"] = float(state.epoch + 1)
        state.seconds += time.perf_counter() - started
        metrics["seconds"] = state.seconds
        state.history.append(metrics)
        auc = metrics.get("valid_auc", -metrics.get("valid_log_loss", 0.0))
        if auc > state.best_auc:
            state.best_auc, state.best_epoch = auc, state.epoch
            state.best_weights = _dump(copy.deepcopy(net.state_dict()))
        state.epoch += 1
        state.weights = _dump(net.state_dict())
        state.optimizer = _dump(optimizer.state_dict())
        stop = state.epoch - 1 - state.best_epoch >= config.patience
        if config.max_seconds is not None and state.seconds >= config.max_seconds:
            stop = True
        if on_epoch is not None:
            on_epoch(state, metrics)
        if stop:
            break
    if state.best_weights is not None:
        net.load_state_dict(_load(state.best_weights))
    net.eval()
    return state

"""Params, Input and Output of the ``knowledge_tracing`` family."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from learnloop.core.family import FamilyParams
from learnloop.core.inputs import ClientModel

ModelKind = Literal["dkt", "attentive", "bkt", "ensemble"]
NetKind = Literal["dkt", "attentive"]
DEFAULT_DROPOUT = {"dkt": 0.5, "attentive": 0.1, "bkt": 0.0}


class KnowledgeTracingParams(FamilyParams):
    """Hyperparameters. Network sizes apply to the model they name; the rest to all."""

    model: ModelKind = Field(
        "dkt", description="dkt (LSTM/GRU), attentive (AKT line), bkt, or an ensemble of networks."
    )
    members: list[NetKind] = Field(
        default_factory=lambda: ["dkt", "dkt", "dkt", "attentive"],
        min_length=2,
        max_length=8,
        description="ensemble: the networks, trained apart (member i seeded seed + i); their "
        "logits are averaged.",
    )
    target: str = Field("correct", description="Column of 0/1 answers.")
    learner_column: str = Field(
        "learner_id", description="Column of learner ids (falls back to subject_id)."
    )
    order_column: str | None = Field(
        None,
        description="Column ordering a learner's attempts; default timestamp, then "
        "predicted_at, then row order.",
    )
    split_column: str | None = Field(
        None,
        description="'train'/'valid' marks per attempt (e.g. a time split): 'valid' attempts are "
        "scored for validation, predicted from the learner's earlier attempts of both kinds.",
    )
    valid_fraction: float = Field(
        0.1, gt=0, lt=0.9, description="Share of learners held out when there is no split column."
    )
    use_items: Literal["auto", "yes", "no"] = Field(
        "auto",
        description="Item (problem) ids as Rasch difficulties; auto: when the data has them.",
    )
    max_len: int = Field(200, ge=2, le=2000, description="Sequence chunk (and serving window).")
    use_recency: bool = Field(
        True,
        description="Counters about the attempt's skill (attempts, success rate, last "
        "answer, gap) feed the prediction.",
    )
    # networks
    embed_dim: int = Field(200, ge=4, description="DKT: interaction embedding size.")
    hidden: int = Field(200, ge=4, description="DKT: recurrent state size.")
    layers: int = Field(1, ge=1, le=4, description="DKT: recurrent layers.")
    cell: Literal["lstm", "gru"] = Field("lstm", description="DKT: recurrent cell.")
    d_model: int = Field(64, ge=8, description="Attentive: model width (divisible by heads).")
    heads: int = Field(4, ge=1, description="Attentive: attention heads.")
    blocks: int = Field(1, ge=1, le=4, description="Attentive: layers per encoder/retriever.")
    d_ff: int = Field(256, ge=8, description="Attentive: feed-forward and output layer width.")
    dropout: float | None = Field(
        None, ge=0, lt=1, description="Dropout; default 0.5 for dkt, 0.1 for attentive."
    )
    # optimisation
    epochs: int = Field(40, ge=1, description="At most this many epochs.")
    patience: int = Field(4, ge=1, description="Stop after this many epochs without a better AUC.")
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    l2_items: float = Field(
        1e-8, ge=0, description="L2 penalty on item difficulties (per attempt of the batch)."
    )
    grad_clip: float = Field(1.0, ge=0)
    max_train_seconds: float | None = Field(None, gt=0, description="Stop training after this.")
    threads: int | None = Field(None, ge=1, description="Torch threads (default: all cores).")
    # BKT
    forgets: bool = Field(False, description="BKT: learn a forgetting probability per skill.")
    restarts: int = Field(5, ge=1, description="BKT: random restarts of EM per skill.")
    em_iterations: int = Field(60, ge=1, description="BKT: EM iterations at most per restart.")
    topics: dict[str, str] = Field(
        default_factory=dict, description="Skill id → topic, for mastery per topic in insights."
    )
    drop_columns: list[str] = Field(
        default_factory=list, description="Columns to ignore (only the known columns are read)."
    )
    # serving
    max_learners: int = Field(
        10_000, ge=1, description="Learner states kept in memory; others are rebuilt on use."
    )

    @model_validator(mode="after")
    def _heads_divide(self) -> Self:
        uses_attention = self.model == "attentive" or (
            self.model == "ensemble" and "attentive" in self.members
        )
        if uses_attention and self.d_model % self.heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by heads {self.heads}")
        return self

    def effective_dropout(self, kind: str | None = None) -> float:
        return DEFAULT_DROPOUT[kind or self.model] if self.dropout is None else self.dropout


def _skills(v: Any) -> Any:
    if isinstance(v, str):
        parts = [p.strip() for p in v.split(";") if p.strip()]
        return parts
    return v


class Attempt(ClientModel):
    """One answered attempt of a learner."""

    model_config = ConfigDict(extra="forbid")

    item_id: str | None = Field(None, max_length=200)
    skill_ids: list[Annotated[str, Field(max_length=200)]] | None = Field(
        None, max_length=32, description="Skills of the item."
    )
    correct: Literal[0, 1] = Field(description="1 = right, 0 = wrong.")

    _split = field_validator("skill_ids", mode="before")(lambda cls, v: _skills(v))

    @model_validator(mode="after")
    def _names_something(self) -> Self:
        if self.item_id is None and not self.skill_ids:
            raise ValueError("an attempt needs item_id or skill_ids")
        return self


class KnowledgeTracingInput(ClientModel):
    """Predict one item for one learner.

    Stateless: give ``history`` (the learner's earlier attempts, oldest first) — as a list of
    attempts or as parallel arrays ``{"item_ids": […], "skill_ids": […], "correct": […]}``.
    Stateful: give ``learner_id`` only; the model uses the answers it has ingested for them.
    """

    model_config = ConfigDict(extra="forbid")

    learner_id: str | None = Field(None, min_length=1, max_length=200)
    item_id: str | None = Field(None, max_length=200)
    skill_ids: list[Annotated[str, Field(max_length=200)]] | None = Field(None, max_length=32)
    history: list[Attempt] | None = Field(None, max_length=100_000)
    include_mastery: bool = Field(False, description="Mastery of every skill, not only this one's.")

    _split = field_validator("skill_ids", mode="before")(lambda cls, v: _skills(v))

    @field_validator("history", mode="before")
    @classmethod
    def _arrays(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        unknown = set(v) - {"item_ids", "skill_ids", "correct"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}; use item_ids, skill_ids, correct")
        correct = v.get("correct")
        if not isinstance(correct, list):
            raise ValueError("history.correct must be a list of 0/1")
        n = len(correct)
        for key in ("item_ids", "skill_ids"):
            values = v.get(key)
            if values is not None and (not isinstance(values, list) or len(values) != n):
                got = len(values) if isinstance(values, list) else type(values).__name__
                raise ValueError(f"history.{key} has {got} entries, history.correct has {n}")
        if v.get("item_ids") is None and v.get("skill_ids") is None:
            raise ValueError("history needs item_ids or skill_ids")
        return [
            {
                "item_id": None if v.get("item_ids") is None else v["item_ids"][i],
                "skill_ids": None if v.get("skill_ids") is None else v["skill_ids"][i],
                "correct": correct[i],
            }
            for i in range(n)
        ]

    @model_validator(mode="after")
    def _names_something(self) -> Self:
        if self.item_id is None and not self.skill_ids:
            raise ValueError("give item_id or skill_ids of the item to predict")
        return self


class KnowledgeTracingOutput(BaseModel):
    probability: float = Field(description="P(the learner answers this item correctly).")
    prediction: int = Field(description="1 when probability ≥ 0.5.")
    mastery: dict[str, float] = Field(
        default_factory=dict, description="P(correct) on a typical item of each skill."
    )
    cold_start: list[str] = Field(
        default_factory=list, description="Ids the model has not seen: 'item:<id>', 'skill:<id>'."
    )
    history_length: int = Field(0, description="Attempts the prediction is conditioned on.")
    learner_state: Literal["stateless", "stored", "new"] = "stateless"

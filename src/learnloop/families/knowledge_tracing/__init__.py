"""The ``knowledge_tracing`` model family: DKT, an attentive (AKT-style) model and BKT."""

from learnloop.families.knowledge_tracing.data import FormatError, load_interactions
from learnloop.families.knowledge_tracing.family import KnowledgeTracingFamily
from learnloop.families.knowledge_tracing.schemas import (
    Attempt,
    KnowledgeTracingInput,
    KnowledgeTracingOutput,
    KnowledgeTracingParams,
)
from learnloop.families.knowledge_tracing.synthetic import (
    generate_synthetic_data,
    oracle_probabilities,
)

__all__ = [
    "Attempt",
    "FormatError",
    "KnowledgeTracingFamily",
    "KnowledgeTracingInput",
    "KnowledgeTracingOutput",
    "KnowledgeTracingParams",
    "generate_synthetic_data",
    "load_interactions",
    "oracle_probabilities",
]

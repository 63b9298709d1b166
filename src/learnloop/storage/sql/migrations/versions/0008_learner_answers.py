"""Learner answers of knowledge-tracing models (the history learner states are rebuilt from).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from learnloop.storage.sql.tables import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "learner_answers",
        sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("learner_id", sa.String(255), nullable=False),
        sa.Column("item_id", sa.String(200), nullable=True),
        sa.Column("skill_ids", sa.String(2000), nullable=True),
        sa.Column("correct", sa.SmallInteger, nullable=False),
        sa.Column("answered_at", UtcDateTime, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("idem_key", sa.String(200), nullable=True, unique=True),
    )
    op.create_index("ix_learner_answers_learner", "learner_answers", ["model", "learner_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_learner_answers_learner", "learner_answers")
    op.drop_table("learner_answers")

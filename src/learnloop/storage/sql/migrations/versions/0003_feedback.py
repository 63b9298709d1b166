"""Feedback ledger, alerts, labelling queue, privacy budgets.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from learnloop.storage.sql.tables import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("idem_key", sa.String(200), nullable=False, unique=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("name", sa.String(64)),
        sa.Column("value", sa.Float),
        sa.Column("payload", sa.JSON),
        sa.Column("prediction_id", sa.String(64), index=True),
        sa.Column("subject_id", sa.String(255), index=True),
        sa.Column("model", sa.String(255), index=True),
        sa.Column("client_ts", UtcDateTime, nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False, index=True),
        sa.Column("text", sa.Text),
        sa.Column("attributes", sa.JSON),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("key", sa.String(255), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False, index=True),
        sa.Column("model", sa.String(255), index=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False, index=True),
    )
    op.create_table(
        "label_tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("prediction_id", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(255), index=True),
        sa.Column("strategy", sa.String(32), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assignee", sa.String(128)),
        sa.Column("assigned_at", UtcDateTime),
        sa.Column("expires_at", UtcDateTime),
        sa.Column("labelled_at", UtcDateTime),
        sa.Column("labelled_by", sa.String(128)),
        sa.Column("feedback_id", sa.String(36)),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("prediction_id"),
    )
    op.create_index("ix_label_tasks_queue", "label_tasks", ["model", "status", "score"])
    op.create_table(
        "privacy_budgets",
        sa.Column("dataset_id", sa.String(64), primary_key=True),
        sa.Column("epsilon", sa.Float, nullable=False),
        sa.Column("delta", sa.Float, nullable=False),
        sa.Column("spent_epsilon", sa.Float, nullable=False),
        sa.Column("spent_delta", sa.Float, nullable=False),
        sa.Column("releases", sa.Integer, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("privacy_budgets")
    op.drop_index("ix_label_tasks_queue", "label_tasks")
    op.drop_table("label_tasks")
    op.drop_table("alerts")
    op.drop_table("feedback")

"""Serving: deployment revisions and the prediction ledger.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from learnloop.storage.sql.tables import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("model", "revision"),
    )
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("model", sa.String(255), nullable=False, index=True),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("arm", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(255), index=True),
        sa.Column("input_hash", sa.String(32), nullable=False),
        sa.Column("inputs", sa.JSON),
        sa.Column("output", sa.JSON, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("cache_hit", sa.Boolean, nullable=False),
        sa.Column("served_by", sa.JSON, nullable=False),
        sa.Column("shadow_of", sa.String(36), index=True),
        sa.Column("created_at", UtcDateTime, nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("predictions")
    op.drop_table("deployments")

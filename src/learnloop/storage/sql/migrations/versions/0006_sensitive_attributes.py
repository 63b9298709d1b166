"""Sensitive attributes, a separate store joined only at fairness evaluation.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from learnloop.storage.sql.tables import UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sensitive_attributes",
        sa.Column("subject_id", sa.String(255), primary_key=True),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sensitive_attributes")

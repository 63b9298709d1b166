"""Monitor reports (drift).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from learnloop.storage.sql.tables import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_reports",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("verdict", sa.Boolean, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("report", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_monitor_reports_lookup", "monitor_reports", ["model", "kind", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_monitor_reports_lookup", "monitor_reports")
    op.drop_table("monitor_reports")

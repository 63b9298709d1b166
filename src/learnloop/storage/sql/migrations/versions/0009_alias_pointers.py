"""Alias pointers: the head of each alias's history chain, locked by every alias move.

Each (model, alias) already in ``alias_events`` gets its pointer from its latest event.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from learnloop.storage.sql.tables import UtcDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alias_pointers",
        sa.Column("model", sa.String(255), primary_key=True),
        sa.Column("alias", sa.String(255), primary_key=True),
        sa.Column("version", sa.String(32), nullable=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("moved_at", UtcDateTime, nullable=True),
    )
    op.execute(
        "INSERT INTO alias_pointers (model, alias, version, seq, moved_at) "
        "SELECT e.model, e.alias, e.to_version, "
        "(SELECT count(*) FROM alias_events c WHERE c.model = e.model AND c.alias = e.alias), "
        "e.at FROM alias_events e WHERE e.id = "
        "(SELECT max(l.id) FROM alias_events l WHERE l.model = e.model AND l.alias = e.alias)"
    )


def downgrade() -> None:
    op.drop_table("alias_pointers")

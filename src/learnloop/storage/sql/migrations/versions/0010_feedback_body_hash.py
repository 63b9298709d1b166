"""Feedback body hashes: an idempotency key reused for a different event is a conflict.

Events stored before have no hash; a retry of one of them is acknowledged as a duplicate, as
before.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("feedback", sa.Column("body_hash", sa.String(64)))  # no table rewrite


def downgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("body_hash")

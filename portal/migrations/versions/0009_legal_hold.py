"""Legal hold (issue 6): a case on hold is never purged; the day the hold was placed.

Revision ID: 0009_legal_hold
Revises: 0008_retention
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_legal_hold"
down_revision = "0008_retention"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain nullable column, added in place (no table rebuild on SQLite). The reason for a
    # hold is an encrypted internal note in the case's thread, not a column.
    op.add_column("cases", sa.Column("held_on", sa.Date(), nullable=True))


def downgrade() -> None:
    # SQLite 3.35+ drops columns in place. The hold notes stay in the threads; the retention
    # job then treats the cases as not held.
    op.drop_column("cases", "held_on")

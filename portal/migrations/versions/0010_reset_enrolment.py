"""One-time passwords lapse (issue 13, finding 7): the time after which the one-time password
of a new or reset account no longer logs in, until its owner has chosen their own.

Revision ID: 0010_reset_enrolment
Revises: 0009_legal_hold
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_reset_enrolment"
down_revision = "0009_legal_hold"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain nullable column, added in place. Accounts that wait for their first password
    # change today keep a one-time password without a lapse (NULL), as before.
    op.add_column(
        "staff_users",
        sa.Column("one_time_password_expires_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("staff_users", "one_time_password_expires_at")

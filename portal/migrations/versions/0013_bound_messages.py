"""Messages and attachments bound to their columns; a staff-only key per case for internal notes
(issue 13, finding 8).

Revision ID: 0013_bound_messages
Revises: 0012_access_requests

Plain columns, added in place (no table rebuild on SQLite). Existing messages keep format 0 and
existing cases thread version 0: no key is at hand here, so they are sealed again in the bound
format, and their internal notes under a new staff-only key, when a staff holder next opens the
case (``services.thread.migrate``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_bound_messages"
down_revision = "0012_access_requests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "messages", sa.Column("ad_version", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column(
        "cases", sa.Column("thread_version", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column("cases", sa.Column("staff_key_tag", sa.LargeBinary(), nullable=True))
    op.add_column("case_access", sa.Column("sealed_staff_key", sa.LargeBinary(), nullable=True))
    op.add_column(
        "attachments", sa.Column("ad_version", sa.Integer(), server_default="0", nullable=False)
    )


def downgrade() -> None:
    # Messages sealed in the bound format do not open with the earlier code: a downgrade past
    # this revision needs a restore of a backup made before it.
    op.drop_column("attachments", "ad_version")
    op.drop_column("case_access", "sealed_staff_key")
    op.drop_column("cases", "staff_key_tag")
    op.drop_column("cases", "thread_version")
    op.drop_column("messages", "ad_version")

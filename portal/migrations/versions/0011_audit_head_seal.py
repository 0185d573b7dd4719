"""The audit chain's head is sealed with the audit key (issue 13, finding 11).

Revision ID: 0011_audit_head_seal
Revises: 0010_reset_enrolment
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_audit_head_seal"
down_revision = "0010_reset_enrolment"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: the audit key is not in the database, so the migration cannot seal an existing
    # head. The next audit event seals it and records `audit.head_sealed` in the chain.
    op.add_column("audit_head", sa.Column("mac", sa.LargeBinary(32), nullable=True))


def downgrade() -> None:
    op.drop_column("audit_head", "mac")

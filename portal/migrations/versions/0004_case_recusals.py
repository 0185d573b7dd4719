"""Recusals get their own table, so that "a recusal is final" no longer depends on the audit
log being kept. Recusals already in the audit log are copied over.

Revision ID: 0004_case_recusals
Revises: 0003_security
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_case_recusals"
down_revision = "0003_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_recusals",
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_recusals_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_case_recusals_staff_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", "staff_id", name=op.f("pk_case_recusals")),
        sqlite_with_rowid=False,
    )
    # Carry over the recusals recorded so far (only for cases and staff that still exist).
    op.execute(
        """
        INSERT INTO case_recusals (case_id, staff_id)
        SELECT DISTINCT e.case_id, e.actor_id FROM audit_events e
        WHERE e.action = 'case.recused' AND e.case_id IS NOT NULL AND e.actor_id IS NOT NULL
          AND EXISTS (SELECT 1 FROM cases c WHERE c.id = e.case_id)
          AND EXISTS (SELECT 1 FROM staff_users s WHERE s.id = e.actor_id)
        """
    )


def downgrade() -> None:
    op.drop_table("case_recusals")

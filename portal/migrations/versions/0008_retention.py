"""Retention (issue 6): closed cases are purged after a period per outcome (else the policy's),
their holders warned beforehand; what the insights count of a purged case stays as a stub.

Revision ID: 0008_retention
Revises: 0007_label_translations
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_retention"
down_revision = "0007_label_translations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain columns, added in place (no table rebuild on SQLite).
    op.add_column("outcomes", sa.Column("retention_days", sa.Integer(), nullable=True))
    op.add_column(
        "policy",
        sa.Column("retention_days", sa.Integer(), server_default="730", nullable=False),
    )
    op.add_column(
        "policy",
        sa.Column("retention_warning_days", sa.Integer(), server_default="30", nullable=False),
    )
    op.add_column("cases", sa.Column("purge_warned_on", sa.Date(), nullable=True))
    op.create_table(
        "retained_cases",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("is_anonymous", sa.Boolean(), nullable=False),
        sa.Column("reporter_returned", sa.Boolean(), nullable=False),
        sa.Column("acknowledged_on", sa.Date(), nullable=True),
        sa.Column("acknowledge_due_on", sa.Date(), nullable=False),
        sa.Column("closed_on", sa.Date(), nullable=False),
        sa.Column("outcome_id", sa.Integer(), nullable=True),
        sa.Column("feedback_on", sa.Date(), nullable=True),
        sa.Column("feedback_due_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retained_cases")),
        sqlite_with_rowid=False,
    )
    op.create_index(
        op.f("ix_retained_cases_received_on"), "retained_cases", ["received_on"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_retained_cases_received_on"), table_name="retained_cases")
    op.drop_table("retained_cases")
    # SQLite 3.35+ drops columns in place.
    op.drop_column("cases", "purge_warned_on")
    op.drop_column("policy", "retention_warning_days")
    op.drop_column("policy", "retention_days")
    op.drop_column("outcomes", "retention_days")

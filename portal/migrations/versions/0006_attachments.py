"""Attachments (issue 5): encrypted attachment metadata and content chunks, and the policy
switch that lets reporters send a file that cannot be cleaned as it is.

Revision ID: 0006_attachments
Revises: 0005_insights
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_attachments"
down_revision = "0005_insights"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "policy",
        sa.Column(
            "attachments_keep_uncleaned", sa.Boolean(), server_default=sa.false(), nullable=False
        ),
    )
    # WITHOUT ROWID in SQLite, like cases and messages: rows are stored in the order of their
    # random ids, not in the order reporters sent them (DESIGN.md invariant 3).
    op.create_table(
        "attachments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("author", sa.String(length=16), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.Column("meta_ciphertext", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_attachments_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
        sqlite_with_rowid=False,
    )
    op.create_index(op.f("ix_attachments_case_id"), "attachments", ["case_id"])
    op.create_table(
        "attachment_chunks",
        sa.Column("attachment_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["attachment_id"],
            ["attachments.id"],
            name=op.f("fk_attachment_chunks_attachment_id_attachments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("attachment_id", "seq", name=op.f("pk_attachment_chunks")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("attachment_chunks")
    op.drop_index(op.f("ix_attachments_case_id"), table_name="attachments")
    op.drop_table("attachments")
    op.drop_column("policy", "attachments_keep_uncleaned")

"""Four eyes (issue 13, finding 6): a change that gives access waits for a second admin.

Revision ID: 0012_access_requests
Revises: 0011_audit_head_seal
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_access_requests"
down_revision = "0011_audit_head_seal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_access_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("change", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=True),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("excludable", sa.Boolean(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["target_id"],
            ["staff_users.id"],
            name=op.f("fk_staff_access_requests_target_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["queues.id"],
            name=op.f("fk_staff_access_requests_queue_id_queues"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"],
            ["staff_users.id"],
            name=op.f("fk_staff_access_requests_requested_by_id_staff_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["staff_users.id"],
            name=op.f("fk_staff_access_requests_decided_by_id_staff_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_access_requests")),
    )
    for column in ("state", "queue_id", "target_id"):
        op.create_index(
            f"ix_staff_access_requests_{column}", "staff_access_requests", [column], unique=False
        )


def downgrade() -> None:
    # Pending requests are lost (nothing they asked for took effect); the changes that were
    # approved stay in effect and in the audit log.
    for column in ("state", "queue_id", "target_id"):
        op.drop_index(f"ix_staff_access_requests_{column}", table_name="staff_access_requests")
    op.drop_table("staff_access_requests")

"""Insights (issue 4): unit headcounts, insight policy, the follow-up flag on cases, published
releases, systemic-signal alerts and personal API tokens.

Revision ID: 0005_insights
Revises: 0004_case_recusals
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_insights"
down_revision = "0004_case_recusals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("org_units", sa.Column("headcount", sa.Integer(), nullable=True))
    op.add_column(
        "policy",
        sa.Column("insights_min_headcount", sa.Integer(), server_default="20", nullable=False),
    )
    op.add_column(
        "policy", sa.Column("signal_threshold", sa.Integer(), server_default="5", nullable=False)
    )
    # Added in place (no table rebuild), so `cases` keeps WITHOUT ROWID. Cases received before
    # this migration count as "came back" when the reporter wrote a message.
    op.add_column(
        "cases",
        sa.Column("reporter_returned", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.execute("UPDATE cases SET reporter_returned = true WHERE reporter_wrote_on IS NOT NULL")
    # Covers every column the insights refresh reads (a quarter is an index-only range scan).
    op.create_index(
        "ix_cases_insights",
        "cases",
        [
            "received_on",
            "category_id",
            "org_category_id",
            "queue_id",
            "site_id",
            "department_id",
            "is_anonymous",
            "reporter_returned",
            "acknowledged_on",
            "acknowledge_due_on",
            "closed_on",
            "outcome_id",
            "feedback_on",
            "feedback_due_on",
        ],
    )

    op.create_table(
        "insight_releases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insight_releases")),
        sa.UniqueConstraint("period", "kind", name=op.f("uq_insight_releases_period_kind")),
    )
    op.create_table(
        "signal_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("raised_on", sa.Date(), nullable=False),
        sa.Column("notified", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["queues.id"],
            name=op.f("fk_signal_alerts_queue_id_queues"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_signal_alerts_category_id_categories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["org_units.id"],
            name=op.f("fk_signal_alerts_unit_id_org_units"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signal_alerts")),
        sa.UniqueConstraint(
            "queue_id",
            "period",
            "category_id",
            "unit_id",
            name=op.f("uq_signal_alerts_queue_id_period_category_id_unit_id"),
        ),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("last_used_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_api_tokens_staff_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index(op.f("ix_api_tokens_staff_id"), "api_tokens", ["staff_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_api_tokens_staff_id"), table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("signal_alerts")
    op.drop_table("insight_releases")
    op.drop_index("ix_cases_insights", table_name="cases")
    # SQLite 3.35+ drops columns in place, so `cases` keeps WITHOUT ROWID.
    op.drop_column("cases", "reporter_returned")
    op.drop_column("policy", "signal_threshold")
    op.drop_column("policy", "insights_min_headcount")
    op.drop_column("org_units", "headcount")

"""Casework: configurable workflow and outcomes, policy, triage fields, deadlines stored per
case, routing keywords and priorities, non-excludable queue members, tags, pending re-grants,
TOTP and session stages for staff, the hash-chained audit log and job bookkeeping.

Columns are added with ``ALTER TABLE ... ADD COLUMN`` (no table rebuild): rebuilding ``cases``
on SQLite would drop and recreate it, firing the ``ON DELETE CASCADE`` of its key copies and
messages, and would lose ``WITHOUT ROWID``. Existing staff sessions are dropped (everyone logs
in again, now with a second factor).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import calendar
import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_NO_ROWID = {"sqlite_with_rowid": False}

DEFAULT_STATUSES = [
    ("new", "New", "new"),
    ("acknowledged", "Acknowledged", "acknowledged"),
    ("investigating", "Investigating", "open"),
    ("awaiting_reporter", "Awaiting reporter", "open"),
    ("closed", "Closed", "closed"),
]
DEFAULT_OUTCOMES = [
    ("substantiated", "Substantiated", True),
    ("partly_substantiated", "Partly substantiated", True),
    ("unsubstantiated", "Unsubstantiated", False),
    ("referred", "Referred elsewhere", False),
    ("withdrawn", "Withdrawn", False),
]


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def upgrade() -> None:
    workflow = op.create_table(
        "workflow_statuses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_statuses")),
        sa.UniqueConstraint("code", name=op.f("uq_workflow_statuses_code")),
    )
    outcomes = op.create_table(
        "outcomes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("substantiated", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcomes")),
        sa.UniqueConstraint("code", name=op.f("uq_outcomes_code")),
    )
    policy = op.create_table(
        "policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("acknowledge_days", sa.Integer(), nullable=False),
        sa.Column("feedback_months", sa.Integer(), nullable=False),
        sa.Column("due_soon_days", sa.Integer(), nullable=False),
        sa.Column("anonymity_threshold", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy")),
    )
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=40), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tags")),
        sa.UniqueConstraint("label", name=op.f("uq_tags_label")),
    )
    op.create_table(
        "case_tags",
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_tags_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tags.id"], name=op.f("fk_case_tags_tag_id_tags"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("case_id", "tag_id", name=op.f("pk_case_tags")),
        **_NO_ROWID,
    )
    op.create_index("ix_case_tags_tag_id", "case_tags", ["tag_id"], unique=False)
    op.create_table(
        "pending_regrants",
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_pending_regrants_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_pending_regrants_staff_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", "staff_id", name=op.f("pk_pending_regrants")),
        **_NO_ROWID,
    )
    op.create_index("ix_pending_regrants_staff_id", "pending_regrants", ["staff_id"], unique=False)
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_email", sa.String(length=254), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=True),
        sa.Column("case_handle", sa.String(length=16), nullable=True),
        sa.Column("target_staff_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_action", "audit_events", ["action"], unique=False)
    op.create_index("ix_audit_events_case_seq", "audit_events", ["case_id", "seq"], unique=False)
    op.create_index("ix_audit_events_actor_seq", "audit_events", ["actor_id", "seq"], unique=False)
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("reporter_days_through", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.create_table(
        "job_runs",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_runs")),
    )

    op.add_column(
        "routing_rules", sa.Column("keywords", sa.Text(), server_default="", nullable=False)
    )
    op.add_column("routing_rules", sa.Column("priority", sa.String(length=16), nullable=True))
    op.add_column(
        "queue_memberships",
        sa.Column("excludable", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    op.add_column("staff_users", sa.Column("totp_sealed", sa.LargeBinary(), nullable=True))
    op.add_column("staff_users", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    op.add_column(
        "staff_users",
        sa.Column("must_change_password", sa.Boolean(), server_default=sa.false(), nullable=False),
    )

    # Cases: deadlines get a placeholder default, are computed below for existing rows with the
    # default policy (7 days; 3 months), and the default is then dropped where the database can.
    placeholder = sa.text("'1970-01-01'")
    op.add_column(
        "cases",
        sa.Column("acknowledge_due_on", sa.Date(), server_default=placeholder, nullable=False),
    )
    op.add_column(
        "cases", sa.Column("feedback_due_on", sa.Date(), server_default=placeholder, nullable=False)
    )
    op.add_column(
        "cases",
        sa.Column("priority", sa.String(length=16), server_default="normal", nullable=False),
    )
    op.add_column(
        "cases",
        sa.Column("reporter_at_risk", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("cases", sa.Column("org_category_id", sa.Integer(), nullable=True))
    op.add_column("cases", sa.Column("outcome_id", sa.Integer(), nullable=True))
    op.add_column(
        "case_access",
        sa.Column("notified", sa.Boolean(), server_default=sa.true(), nullable=False),
    )

    bind = op.get_bind()
    cases = sa.table(
        "cases",
        sa.column("id", sa.String),
        sa.column("received_on", sa.Date),
        sa.column("acknowledged_on", sa.Date),
        sa.column("acknowledge_due_on", sa.Date),
        sa.column("feedback_due_on", sa.Date),
    )
    rows = bind.execute(sa.select(cases.c.id, cases.c.received_on, cases.c.acknowledged_on)).all()
    for case_id, received_on, acknowledged_on in rows:
        ack_due = received_on + dt.timedelta(days=7)
        bind.execute(
            cases.update()
            .where(cases.c.id == case_id)
            .values(
                acknowledge_due_on=ack_due,
                feedback_due_on=_add_months(acknowledged_on or ack_due, 3),
            )
        )
    if bind.dialect.name != "sqlite":
        op.alter_column("cases", "acknowledge_due_on", server_default=None)
        op.alter_column("cases", "feedback_due_on", server_default=None)

    # Sessions gain a public name and a stage; existing ones are simply ended.
    op.drop_table("staff_sessions")
    op.create_table(
        "staff_sessions",
        sa.Column("id_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("wrapped_private_key", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_staff_sessions_staff_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_digest", name=op.f("pk_staff_sessions")),
    )
    op.create_index("ix_staff_sessions_public_id", "staff_sessions", ["public_id"], unique=True)

    op.bulk_insert(
        workflow,
        [
            {"code": c, "label": label, "kind": kind, "position": i, "active": True}
            for i, (c, label, kind) in enumerate(DEFAULT_STATUSES)
        ],
    )
    op.bulk_insert(
        outcomes,
        [
            {"code": c, "label": label, "substantiated": sub, "position": i, "active": True}
            for i, (c, label, sub) in enumerate(DEFAULT_OUTCOMES)
        ],
    )
    op.bulk_insert(
        policy,
        [
            {
                "id": 1,
                "acknowledge_days": 7,
                "feedback_months": 3,
                "due_soon_days": 2,
                "anonymity_threshold": 5,
            }
        ],
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": bytes(32), "reporter_days_through": None}])


def downgrade() -> None:
    op.drop_index("ix_staff_sessions_public_id", table_name="staff_sessions")
    op.drop_table("staff_sessions")
    op.create_table(
        "staff_sessions",
        sa.Column("id_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("wrapped_private_key", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_staff_sessions_staff_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_digest", name=op.f("pk_staff_sessions")),
    )
    for column in (
        "acknowledge_due_on",
        "feedback_due_on",
        "priority",
        "reporter_at_risk",
        "org_category_id",
        "outcome_id",
    ):
        op.drop_column("cases", column)
    op.drop_column("case_access", "notified")
    op.drop_column("staff_users", "must_change_password")
    op.drop_column("staff_users", "totp_last_step")
    op.drop_column("staff_users", "totp_sealed")
    op.drop_column("queue_memberships", "excludable")
    op.drop_column("routing_rules", "priority")
    op.drop_column("routing_rules", "keywords")
    op.drop_table("job_runs")
    op.drop_table("audit_head")
    op.drop_index("ix_audit_events_actor_seq", table_name="audit_events")
    op.drop_index("ix_audit_events_case_seq", table_name="audit_events")
    op.drop_index("ix_audit_events_action", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index("ix_pending_regrants_staff_id", table_name="pending_regrants")
    op.drop_table("pending_regrants")
    op.drop_index("ix_case_tags_tag_id", table_name="case_tags")
    op.drop_table("case_tags")
    op.drop_table("tags")
    op.drop_table("policy")
    op.drop_table("outcomes")
    op.drop_table("workflow_statuses")

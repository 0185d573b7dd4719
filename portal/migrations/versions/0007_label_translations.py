"""Label translations (issue 5): each taxonomy row keeps the translations of its labels, given in
the taxonomy file as ``label_zh_CN = "..."``, in a JSON column ``{locale: {field: text}}``.

Revision ID: 0007_label_translations
Revises: 0005_insights
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_label_translations"
# Written next to 0006_attachments; it goes after it when both are merged.
down_revision = "0006_attachments"
branch_labels = None
depends_on = None

TABLES = ("queues", "categories", "org_units", "workflow_statuses", "outcomes")


def upgrade() -> None:
    # Added in place (no table rebuild); existing rows get no translation, so they show English.
    for table in TABLES:
        op.add_column(
            table, sa.Column("translations", sa.JSON(), server_default="{}", nullable=False)
        )


def downgrade() -> None:
    # SQLite 3.35+ drops columns in place.
    for table in reversed(TABLES):
        op.drop_column(table, "translations")

"""Staff security: the TOTP secret being enrolled is kept, sealed, in the log-in session's row.

Revision ID: 0003_security
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_security"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("staff_sessions", sa.Column("pending_totp", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column("staff_sessions", "pending_totp")

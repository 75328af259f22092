"""encrypted target credentials

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:39:58.364566
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "target_credentials",
        sa.Column("target", sa.String(length=100), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("target", name=op.f("pk_target_credentials")),
    )


def downgrade() -> None:
    op.drop_table("target_credentials")

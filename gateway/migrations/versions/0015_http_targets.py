"""target calls and webhook records' send: limits' counts, and forwarding events as received

Revision ID: 0015_http_targets
Revises: 0014_connector_versions
Create Date: 2026-12-05 23:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_http_targets"
down_revision = "0014_connector_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "target_calls",
        sa.Column("target", sa.String(length=100), nullable=False),
        sa.Column("window", sa.String(length=8), nullable=False),
        sa.Column("period", sa.String(length=32), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("target", "window", name=op.f("pk_target_calls")),
    )
    op.add_column(
        "webhooks",
        sa.Column("send", sa.String(length=8), server_default=sa.text("'upserts'"), nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_column("send")
    op.drop_table("target_calls")

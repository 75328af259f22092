"""attempts before replay, so history attempt numbers keep counting up across replays

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 09:24:58.440100
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN on both databases: the events table is large, never copy it.
    op.add_column(
        "events",
        sa.Column(
            "attempts_before_replay", sa.Integer(), server_default=sa.text("0"), nullable=False
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("attempts_before_replay")

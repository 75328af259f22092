"""groups: paused, so that a group's events wait as held instead of being processed

Revision ID: 0012_paused_groups
Revises: 0011_refused_deliveries
Create Date: 2026-12-05 23:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_paused_groups"
down_revision = "0011_refused_deliveries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("groups") as batch:
        batch.add_column(
            sa.Column("paused", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    # Released rather than stranded: a release without pausing has no one to resume them.
    op.execute("UPDATE events SET status = 'pending' WHERE status = 'held'")
    with op.batch_alter_table("groups") as batch:
        batch.drop_column("paused")

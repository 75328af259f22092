"""deliveries: no index on group_id

No query reads deliveries by group (events carry the group, and are indexed by it), and each
commit of the receive path wrote two to three pages of it, 4 % of what such a commit writes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 09:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index(op.f("ix_deliveries_group_id"), table_name="deliveries")


def downgrade() -> None:
    op.create_index(op.f("ix_deliveries_group_id"), "deliveries", ["group_id"])

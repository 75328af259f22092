"""refused deliveries: deliveries answered 400 or 401 are kept as rows of their own

Each row says what it was answered (outcome, status, error code and message) and whether it was
verified; its body is kept only when it was. The new columns default to what an accepted
delivery has, so the receive path's inserts stay as they were. An index lists a group's
deliveries, and a partial one (refused rows only, which accepted inserts never touch) counts a
group's refusals over time.

Revision ID: 0011_refused_deliveries
Revises: 0010_alerts
Create Date: 2026-12-05 23:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_refused_deliveries"
down_revision = "0010_alerts"
branch_labels = None
depends_on = None

REFUSED = sa.text("outcome = 'refused'")


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column("body", existing_type=sa.LargeBinary(), nullable=True)
        batch.add_column(
            sa.Column(
                "outcome",
                sa.String(length=16),
                server_default=sa.text("'accepted'"),
                nullable=False,
            )
        )
        batch.add_column(
            sa.Column("status", sa.Integer(), server_default=sa.text("200"), nullable=False)
        )
        batch.add_column(
            sa.Column("verified", sa.Boolean(), server_default=sa.text("true"), nullable=False)
        )
        batch.add_column(sa.Column("error_code", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("message", sa.Text(), nullable=True))
        batch.add_column(sa.Column("size", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("reprocessed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_deliveries_group", "deliveries", ["group_id", "id"])
    op.create_index(
        "ix_deliveries_refused",
        "deliveries",
        ["group_id", "received_at"],
        sqlite_where=REFUSED,
        postgresql_where=REFUSED,
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_refused", table_name="deliveries")
    op.drop_index("ix_deliveries_group", table_name="deliveries")
    op.execute("DELETE FROM deliveries WHERE outcome = 'refused'")
    with op.batch_alter_table("deliveries") as batch:
        for column in (
            "reprocessed_at",
            "sha256",
            "size",
            "message",
            "error_code",
            "verified",
            "status",
            "outcome",
        ):
            batch.drop_column(column)
        batch.alter_column("body", existing_type=sa.LargeBinary(), nullable=False)

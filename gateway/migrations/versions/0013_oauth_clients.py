"""oauth clients: client credentials per group, and where a group takes its bearer token and
its API key

Revision ID: 0013_oauth_clients
Revises: 0012_paused_groups
Create Date: 2026-12-05 23:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_oauth_clients"
down_revision = "0012_paused_groups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_clients",
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("group_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("secret_hint", sa.String(length=16), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["groups.id"],
            name=op.f("fk_oauth_clients_group_id_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_oauth_clients")),
    )
    op.create_index(op.f("ix_oauth_clients_group_id"), "oauth_clients", ["group_id"])
    # Plain ADD COLUMNs on both databases: no copy of the groups table.
    op.add_column(
        "groups",
        sa.Column("require_bearer", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("groups", sa.Column("api_key", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.drop_column("api_key")
        batch_op.drop_column("require_bearer")
    op.drop_index(op.f("ix_oauth_clients_group_id"), table_name="oauth_clients")
    op.drop_table("oauth_clients")

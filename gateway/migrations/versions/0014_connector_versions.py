"""connector profiles: versions and their history; groups: description, contact

A custom connector profile keeps every version it had, and each group records the version
its deliveries are verified with. Existing profiles become their own version 1.

Revision ID: 0014_connector_versions
Revises: 0013_oauth_clients
Create Date: 2026-12-05 23:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_connector_versions"
down_revision = "0013_oauth_clients"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connector_profile_versions",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name=op.f("pk_connector_profile_versions")),
    )
    with op.batch_alter_table("connector_profiles") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    profiles = sa.table(
        "connector_profiles",
        sa.column("name", sa.String),
        sa.column("document", sa.JSON),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    op.execute(profiles.update().values(updated_at=profiles.c.created_at))
    op.execute(
        sa.text(
            "INSERT INTO connector_profile_versions (name, version, document, changes, created_at)"
            " SELECT name, 1, document, :changes, created_at FROM connector_profiles"
        ).bindparams(sa.bindparam("changes", ["created"], type_=sa.JSON))
    )
    with op.batch_alter_table("connector_profiles") as batch:
        batch.alter_column("version", server_default=None)
        batch.alter_column("updated_at", nullable=False)
    with op.batch_alter_table("groups") as batch:
        batch.add_column(sa.Column("connector_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch.add_column(sa.Column("contact", sa.String(length=500), nullable=True))
    groups = sa.table(
        "groups",
        sa.column("connector", sa.String),
        sa.column("connector_version", sa.Integer),
    )
    op.execute(
        groups.update()
        .where(groups.c.connector.in_(sa.select(profiles.c.name)))
        .values(connector_version=1)
    )


def downgrade() -> None:
    with op.batch_alter_table("groups") as batch:
        batch.drop_column("contact")
        batch.drop_column("description")
        batch.drop_column("connector_version")
    with op.batch_alter_table("connector_profiles") as batch:
        batch.drop_column("updated_at")
        batch.drop_column("version")
    op.drop_table("connector_profile_versions")

"""mapping versions: where each came from (a file, the API or the console)

Loading mapping files skips a file whose content was already loaded from it, and will not
overwrite a version made in the API or the console unless forced.

Revision ID: 0008_mapping_version_source
Revises: 0007
Create Date: 2026-12-05 20:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_mapping_version_source"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mapping_versions") as batch:
        batch.add_column(sa.Column("source", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("source_path", sa.Text(), nullable=True))
        batch.add_column(sa.Column("source_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mapping_versions") as batch:
        batch.drop_column("source_sha256")
        batch.drop_column("source_path")
        batch.drop_column("source")

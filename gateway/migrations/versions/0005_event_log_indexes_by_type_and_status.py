"""event log indexes by type and by status, each in id order

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 09:10:00.000000
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

#: Each lists its events newest first, so a page of the log filtered by it reads one page.
INDEXES = {"ix_events_type": ["type", "id"], "ix_events_status": ["status", "id"]}


def upgrade() -> None:
    with _beside_running_gateways():
        for name, columns in INDEXES.items():
            op.create_index(
                name, "events", columns, if_not_exists=True, postgresql_concurrently=True
            )


def downgrade() -> None:
    with _beside_running_gateways():
        for name in INDEXES:
            op.drop_index(name, "events", if_exists=True, postgresql_concurrently=True)


@contextlib.contextmanager
def _beside_running_gateways() -> Iterator[None]:
    """On PostgreSQL, build outside a transaction and without blocking writes: the events table
    may hold millions of rows, and deliveries keep coming while the index is built. SQLite has
    no such build; it holds the write lock for the few seconds a million rows take."""
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            yield
    else:
        yield

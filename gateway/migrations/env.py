"""Alembic environment: the URL comes from the gateway's settings, never from a file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from gateway.models import Base

config = context.config


def run_migrations() -> None:
    url = config.get_main_option("sqlalchemy.url")
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    if url is None:  # gateway.migrate always sets it
        raise RuntimeError("no sqlalchemy.url: run migrations through gateway.migrate")
    engine = create_engine(url)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        # A migration that builds an index outside a transaction (PostgreSQL's CONCURRENTLY)
        # commits the ones before it: each one is its own transaction, so a failure leaves the
        # schema at the last one that completed.
        transaction_per_migration=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()

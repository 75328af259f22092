"""Where the gateway keeps what it received and what it did: one interface, two databases.

Services hold a :class:`Storage` and never ask which database is behind it; :func:`open_storage`
picks the implementation from the URL.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url

from gateway.storage.base import NOT_MIGRATED, JsonText, Storage, translate_outage

__all__ = ["NOT_MIGRATED", "JsonText", "Storage", "open_storage", "translate_outage"]


def open_storage(url: str) -> Storage:
    """The storage for a database URL: SQLite's file (or memory), else PostgreSQL."""
    if make_url(url).get_backend_name() == "sqlite":
        from gateway.storage.sqlite import SQLiteStorage

        return SQLiteStorage(url)
    from gateway.storage.postgresql import PostgresStorage

    return PostgresStorage(url)

"""Schema migrations with Alembic, driven from the gateway's own settings."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.exc import OperationalError

from gateway.errors import Detail, GatewayError, StoreUnavailable
from gateway.storage import Storage, translate_outage


def _scripts_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("gateway") / "migrations"))
    return config


def alembic_config(database: Storage) -> Config:
    config = _scripts_config()
    config.set_main_option(
        "sqlalchemy.url", database.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    return config


def upgrade(database: Storage, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe to run on every start."""
    with reaching(database):
        # Opened by the storage first, a new SQLite file is created as it creates one: for its
        # owner only, where Alembic's own engine would leave it readable by all.
        database.engine.connect().close()
        try:
            command.upgrade(alembic_config(database), revision)
        except CommandError as exc:
            raise GatewayError(
                f"cannot upgrade the database to revision {revision!r}: {exc}",
                code="migration_failed",
            ) from exc


def current_revision(database: Storage) -> str | None:
    """The schema revision the database is at; None before the first migration."""
    with reaching(database):
        return _revision(database)


def _revision(database: Storage) -> str | None:
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@functools.cache
def head_revision() -> str | None:
    """The newest revision this release's migrations reach, read once per process."""
    return ScriptDirectory.from_config(_scripts_config()).get_current_head()


def schema_is_current(database: Storage) -> bool:
    """Whether the database's schema is the one this release needs (``gateway db upgrade``)."""
    # Not current_revision: its error names the database, and this one answers /readyz.
    with translate_outage():
        return _revision(database) == head_revision()


@contextlib.contextmanager
def reaching(database: Storage) -> Iterator[None]:
    """Say which database cannot be reached, and the driver's reason, without its password.

    Migrating is what an admin runs first against a new database: it is where a wrong host,
    port or path shows, so the message says where it looked.
    """
    try:
        yield
    except OperationalError as exc:
        where = database.url.render_as_string(hide_password=True)
        failed = "opened" if database.is_sqlite else "reached"
        reasons = [line.strip() for line in str(exc.orig).splitlines() if line.strip()]
        raise StoreUnavailable(
            f"the database at {where} cannot be {failed}",
            details=[Detail("", reason) for reason in reasons],
        ) from exc

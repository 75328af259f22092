"""Schema migrations with Alembic, driven from the gateway's own settings."""

from __future__ import annotations

import functools
from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from gateway.db import Database, translate_outage


def _scripts_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("gateway") / "migrations"))
    return config


def alembic_config(database: Database) -> Config:
    config = _scripts_config()
    config.set_main_option(
        "sqlalchemy.url", database.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    return config


def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe to run on every start."""
    command.upgrade(alembic_config(database), revision)


def current_revision(database: Database) -> str | None:
    """The schema revision the database is at; None before the first migration."""
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@functools.cache
def head_revision() -> str | None:
    """The newest revision this release's migrations reach, read once per process."""
    return ScriptDirectory.from_config(_scripts_config()).get_current_head()


def schema_is_current(database: Database) -> bool:
    """Whether the database's schema is the one this release needs (``gateway db upgrade``)."""
    with translate_outage():
        return current_revision(database) == head_revision()

"""The migrations build the schema the models declare, on both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gateway.models import Base


def test_the_migrated_schema_is_the_one_the_models_declare(gw: Any) -> None:
    """Tables, columns, types and indexes alike: a model changed without its migration (or the
    other way round) would leave an index the code expects missing, or one it dropped written."""
    with gw.db.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)

    assert differences == []

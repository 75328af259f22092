"""Core statements compiled once and run on the driver's cursor: the receive path's inserts.

For a few small rows, SQLAlchemy's execution layer (cache lookup, parameter processing, result
metadata) costs more CPU than the driver's own work: on SQLite, a third of what storing a
delivery cost. These statements keep what SQLAlchemy knows (the dialect's SQL, each column
type's conversion of Python values) and drop the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Dialect
from sqlalchemy.sql.dml import Insert


class DriverStatement:
    """An INSERT of the given columns for one dialect, as SQL text and bound parameters."""

    def __init__(self, statement: Insert, columns: Sequence[str], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(columns))
        self.sql = str(compiled)
        self._positions = list(compiled.positiontup or ()) if compiled.positional else None
        self._processors = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()
        }
        #: psycopg returns each row's RETURNING from one pipelined executemany; sqlite3 cannot.
        self._returning_many = dialect.driver == "psycopg"

    def params(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        bound = {}
        for name, process in self._processors.items():
            bound[name] = values[name] if process is None else process(values[name])
        if self._positions is None:
            return bound
        return tuple(bound[name] for name in self._positions)

    def execute_many(self, cursor: Any, rows: Iterable[Mapping[str, Any]]) -> None:
        params = [self.params(row) for row in rows]
        if params:
            cursor.executemany(self.sql, params)

    def returning_each(self, cursor: Any, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Insert the rows in order; each one's RETURNING row, or None where none came back."""
        params = [self.params(row) for row in rows]
        if not params:
            return []
        if not self._returning_many:
            return [cursor.execute(self.sql, p).fetchone() for p in params]
        cursor.executemany(self.sql, params, returning=True)
        found = [cursor.fetchone()]
        while cursor.nextset():
            found.append(cursor.fetchone())
        return found

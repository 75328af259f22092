"""Core statements compiled once and run on the driver's cursor: the receive path's writes.

For a few small rows, SQLAlchemy's execution layer (cache lookup, parameter processing, result
metadata, its transaction) costs more CPU than the driver's own work. These statements keep
what SQLAlchemy knows (the dialect's SQL, each column type's conversion of values) and drop the
rest. Run them in
:meth:`gateway.storage.base.Storage.driver_transaction`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast

from sqlalchemy import Dialect, Select, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.expression import ClauseElement


class _Compiled:
    """A statement's SQL for one dialect, and how to lay out its parameters."""

    def __init__(self, statement: ClauseElement, dialect: Dialect, **options: Any) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect, **options))
        self.sql = str(compiled)
        self.binds = compiled.binds
        #: Whether the driver takes values in order (sqlite3's ``?``) rather than by name.
        self.positional = compiled.positional
        #: The parameter names, in order where the paramstyle is positional.
        self.names = list(compiled.positiontup or ()) if self.positional else list(self.binds)

    def layout(self, bound: Mapping[str, Any]) -> Any:
        """Named parameters as the driver takes them: the mapping, or values in order."""
        return tuple([bound[name] for name in self.names]) if self.positional else bound


class RowsInsert(Protocol):
    """Inserts many rows into one table on the driver's cursor."""

    def execute_many(self, cursor: Any, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert the rows; how many the database took (-1 where the driver cannot tell)."""
        ...


class DriverStatement:
    """An INSERT of the given columns, with each value converted by its column's type."""

    def __init__(self, statement: Insert, columns: Sequence[str], dialect: Dialect) -> None:
        self._compiled = compiled = _Compiled(statement, dialect, column_keys=list(columns))
        #: Each parameter's name and its type's conversion, in the order the driver takes them.
        self._processors = [
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in compiled.names
        ]

    def params(self, values: Mapping[str, Any]) -> Any:
        converted = [
            values[name] if process is None else process(values[name])
            for name, process in self._processors
        ]
        if self._compiled.positional:
            return tuple(converted)
        return dict(zip(self._compiled.names, converted, strict=True))

    def execute_many(self, cursor: Any, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert the rows; how many the database took (-1 where the driver cannot tell)."""
        params = [self.params(row) for row in rows]
        if not params:
            return 0
        cursor.executemany(self._compiled.sql, params)
        return int(cursor.rowcount)


class ColumnarInsert:
    """An INSERT of many rows as one statement taking one array per column (PostgreSQL).

    ``INSERT ... SELECT ... FROM unnest(:col1, :col2, ...)``: one statement to send, plan and
    wait for, however many rows the batch has. An executemany sends one per row, and under
    gevent psycopg waits for its socket in Python code, once per statement and more.
    """

    def __init__(self, statement: Insert, columns: Sequence[str], dialect: Dialect) -> None:
        table = statement.table
        arrays = [bindparam(name, type_=ARRAY(table.c[name].type)) for name in columns]
        rows = func.unnest(*arrays).table_valued(*columns, with_ordinality="n").render_derived()
        # In the rows' order, so that a serial key is drawn in that order too (inserted_ids).
        ordered = select(*[rows.c[name] for name in columns]).order_by(rows.c.n)
        self._compiled = _Compiled(statement.from_select(list(columns), ordered), dialect)
        # Sent in binary: psycopg quotes every text element of an array in text format with a
        # regular expression, which costs more than the rest of the insert for JSON and bytes.
        for name in columns:
            self._compiled.sql = self._compiled.sql.replace(f"%({name})s", f"%({name})b")
        #: Each column's conversion of one value, as for a single-row insert.
        self._processors = [
            (name, table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in columns
        ]

    def params(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
        return {
            name: [row[name] for row in rows]
            if process is None
            else [process(row[name]) for row in rows]
            for name, process in self._processors
        }

    def execute_many(self, cursor: Any, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert the rows; how many the database took."""
        if not rows:
            return 0
        cursor.execute(self._compiled.sql, self.params(rows))
        return int(cursor.rowcount)

    def inserted_ids(self, cursor: Any, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Insert the rows (a statement ``RETURNING`` its serial key); their keys, in order.

        The key's sequence is drawn once per row in the order the rows are selected, so the
        keys ascend in the rows' order however RETURNING lists them, whatever other sessions
        draw from the sequence meanwhile.
        """
        if not rows:
            return []
        cursor.execute(self._compiled.sql, self.params(rows))
        return sorted(row[0] for row in cursor.fetchall())


class DriverQuery:
    """A SELECT whose rows come back converted to Python values, as SQLAlchemy returns them."""

    def __init__(self, query: Select[*tuple[Any, ...]], dialect: Dialect) -> None:
        self._compiled = _Compiled(query, dialect)
        self._converters = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in query.selected_columns
        ]

    def rows(self, cursor: Any, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        cursor.execute(self._compiled.sql, self._compiled.layout(values))
        return [
            tuple(
                value if convert is None else convert(value)
                for convert, value in zip(self._converters, row, strict=True)
            )
            for row in cursor.fetchall()
        ]

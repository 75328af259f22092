"""Batch statements for the worker's hot path: one statement per table and batch.

The ORM's bulk helpers fall back to a statement per row in some shapes (heterogeneous rows,
server-generated keys on PostgreSQL); these Core statements never do.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import (
    Insert,
    String,
    Table,
    Update,
    and_,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

CHUNK = 500


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT the rows in one statement (see :func:`_as_arrays`)."""
    if not rows:
        return
    arrays = _as_arrays(session, rows)
    if arrays is None:
        session.execute(insert(table), list(rows))
        return
    session.execute(_insert_from_arrays(table, tuple(rows[0])), arrays)


def update_rows(
    session: Session, table: Table, keys: Sequence[str], rows: Sequence[dict[str, Any]]
) -> None:
    """UPDATE each row by its ``keys`` columns, setting its other columns, in one statement."""
    if not rows:
        return
    arrays = _as_arrays(session, rows)
    if arrays is None:
        where = and_(*(table.c[k] == bindparam(f"key_{k}") for k in keys))
        params = [{**{f"key_{k}": r[k] for k in keys}, **_without(r, keys)} for r in rows]
        session.execute(update(table).where(where), params)
        return
    session.execute(_update_from_arrays(table, tuple(keys), tuple(rows[0])), arrays)


def _as_arrays(session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]] | None:
    """On PostgreSQL, the rows (all of the same columns) as one array per column; else None.

    The statements below unnest them into one set of rows: an executemany costs the server a
    statement per row, and more of its CPU. SQLite has no arrays,
    and its executemany runs in-process anyway.
    """
    if session.get_bind().dialect.name != "postgresql":
        return None
    return {f"each_{c}": [row[c] for row in rows] for c in rows[0]}


def _given(table: Table, columns: tuple[str, ...]) -> Any:
    """``unnest(:each_a, :each_b, ...) AS given(a, b, ...)``, each array of its column's type."""
    arrays = [bindparam(f"each_{c}", type_=_array_of(table.c[c].type)) for c in columns]
    return func.unnest(*arrays).table_valued(*columns).render_derived(name="given")


def _array_of(element: TypeEngine[Any]) -> ARRAY[Any]:
    """An array of one dimension (a JSON column's list values are values, not rows of a
    nested array) of the column's type without a length: PostgreSQL cuts a value cast to
    ``VARCHAR(n)`` down to n characters, where the column itself refuses it whole."""
    if isinstance(element, String) and element.length is not None:
        element = String()
    return ARRAY(element, dimensions=1)


@functools.lru_cache(maxsize=32)
def _insert_from_arrays(table: Table, columns: tuple[str, ...]) -> Insert:
    given = _given(table, columns)
    return insert(table).from_select(columns, select(*given.c))


@functools.lru_cache(maxsize=32)
def _update_from_arrays(table: Table, keys: tuple[str, ...], columns: tuple[str, ...]) -> Update:
    given = _given(table, columns)
    return (
        update(table)
        .where(*(table.c[k] == given.c[k] for k in keys))
        .values({c: given.c[c] for c in columns if c not in keys})
    )


def rows_by_keys(
    session: Session, table: Table, keys: Sequence[tuple[Any, ...]], columns: Sequence[str]
) -> Iterator[Any]:
    """Rows whose primary key is in ``keys``: one IN query per leading part of the key.

    A plain ``IN (...)`` on the last key column uses the primary key index on both databases,
    where a tuple ``IN`` of many tuples makes PostgreSQL plan slowly.
    """
    pk = [c.name for c in table.primary_key.columns]
    *lead, last = pk
    grouped: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for key in keys:
        grouped[tuple(key[:-1])].append(key[-1])
    selected = [table.c[c] for c in columns]
    for prefix, values in grouped.items():
        for start in range(0, len(values), CHUNK):
            query = select(*selected).where(
                *(table.c[name] == value for name, value in zip(lead, prefix, strict=True)),
                table.c[last].in_(values[start : start + CHUNK]),
            )
            yield from session.execute(query)


def _without(row: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in keys}

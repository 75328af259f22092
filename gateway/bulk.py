"""Batch statements for the worker's hot path: one executemany per table, on both databases.

The ORM's bulk helpers fall back to a statement per row in some shapes (heterogeneous rows,
server-generated keys on PostgreSQL); these Core statements never do.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Table, and_, bindparam, insert, select, update
from sqlalchemy.orm import Session

CHUNK = 500


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(table), list(rows))


def update_rows(
    session: Session, table: Table, keys: Sequence[str], rows: Sequence[dict[str, Any]]
) -> None:
    """UPDATE each row by its ``keys`` columns, setting its other columns, in one executemany."""
    if not rows:
        return
    where = and_(*(table.c[k] == bindparam(f"key_{k}") for k in keys))
    params = [{**{f"key_{k}": r[k] for k in keys}, **_without(r, keys)} for r in rows]
    session.execute(update(table).where(where), params)


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

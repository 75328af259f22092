"""The worker's batch statements store exactly what the ORM would, one row at a time."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from gateway.models import Record, WriteMark
from gateway.storage.bulk import insert_rows, update_rows

VALUES: list[Any] = [
    None,
    0,
    -1.5,
    10**20,
    "text",
    "ünïcode ☃ \U0001f600",
    'quotes " and \\ backslashes',
    {"a": [1, {"b": None}], "c": "d"},
    [],
    True,
]


def _mark(number: int, value: Any, event_id: int = 1) -> dict[str, Any]:
    return {
        "target": "local",
        "object": "Thing__c",
        "external_id": f"x-{number}",
        "order_value": value,
        "event_id": event_id,
    }


def _stored(gw: Any, prefix: str) -> list[tuple[Any, Any, int]]:
    """Each mark's value as the ORM reads it and as the database holds it, in key order."""
    query = text(
        "SELECT external_id, CAST(order_value AS TEXT), event_id FROM write_marks"
        " WHERE external_id LIKE :prefix ORDER BY external_id"
    )
    with gw.db.session() as session:
        raw = list(session.execute(query, {"prefix": f"{prefix}%"}))
        read = {m.external_id: m.order_value for m in session.scalars(select(WriteMark))}
    return [(read[external_id], held, event_id) for external_id, held, event_id in raw]


def _by_the_orm(gw: Any, rows: list[dict[str, Any]]) -> None:
    with gw.db.session() as session:
        session.add_all(WriteMark(**row) for row in rows)


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_inserted_rows_hold_what_the_orm_would_store(gw: Any, value: Any) -> None:
    _by_the_orm(gw, [{**_mark(0, value), "external_id": "orm"}])
    with gw.db.session() as session:
        insert_rows(session, WriteMark.__table__, [_mark(n, value) for n in range(3)])

    (orm,) = _stored(gw, "orm")
    assert _stored(gw, "x-") == [orm] * 3
    assert orm[0] == value


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_updated_rows_hold_what_the_orm_would_store(gw: Any, value: Any) -> None:
    _by_the_orm(gw, [{**_mark(0, value, event_id=2), "external_id": "orm"}])
    _by_the_orm(gw, [_mark(n, "before") for n in range(3)])
    with gw.db.session() as session:
        update_rows(
            session,
            WriteMark.__table__,
            ("target", "object", "external_id"),
            [_mark(n, value, event_id=2) for n in range(3)],
        )

    (orm,) = _stored(gw, "orm")
    assert _stored(gw, "x-") == [orm] * 3


def test_an_inserted_value_longer_than_its_column_is_never_cut_short(gw: Any) -> None:
    """PostgreSQL refuses it, SQLite keeps it whole: neither stores a part of it."""
    too_long = "x-" + "9" * 300  # external_id holds 255 characters
    with contextlib.suppress(DBAPIError), gw.db.session() as session:
        insert_rows(session, WriteMark.__table__, [{**_mark(0, 1), "external_id": too_long}])

    with gw.db.session() as session:
        assert list(session.scalars(select(WriteMark.external_id))) in ([], [too_long])


def test_an_updated_value_longer_than_its_column_is_never_cut_short(gw: Any) -> None:
    now = datetime.now(UTC)
    record = {
        "object": "Thing__c",
        "external_id": "x-1",
        "external_id_field": "Key__c",
        "fields": {},
        "created_at": now,
        "updated_at": now,
        "source_event_id": 1,
    }
    with gw.db.session() as session:
        session.add(Record(**record))
    too_long = "Key__c" + "_" * 200  # external_id_field holds 100 characters
    with contextlib.suppress(DBAPIError), gw.db.session() as session:
        update_rows(
            session,
            Record.__table__,
            ("object", "external_id"),
            [{**record, "external_id_field": too_long}],
        )

    with gw.db.session() as session:
        assert session.scalars(select(Record.external_id_field)).one() in ("Key__c", too_long)

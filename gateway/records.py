"""The embedded record store as admins browse it: its objects, one object's records, one record
with the events that wrote it, and deleting a record.

A list walks the primary key (object, external id) of one object in external id order, so a
page costs about a page of rows whatever the store holds; its filters are checked on the rows
walked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, String, cast, delete, func, or_, select

from gateway.errors import Detail, NotFound, ValidationFailed
from gateway.event_log import json_holds, parse_time
from gateway.models import EventResult, Record
from gateway.services import Gateway
from gateway.targets.local import LocalTarget

#: The filters a list of records takes besides paging.
RECORD_FILTERS = ("field", "value", "updated_since", "updated_until", "contains")
#: The outcomes of an upsert that left a record in the store.
WRITTEN = ("created", "updated")
#: Field names a ``field`` filter can name: those a mapping gives Salesforce-like objects.
FIELD_NAME = re.compile(r"[A-Za-z0-9_\-]{1,100}")


def list_objects(gw: Gateway) -> list[tuple[str, int]]:
    """Each object in the store with how many records it holds, by name."""
    query = select(Record.object, func.count()).group_by(Record.object).order_by(Record.object)
    with gw.db.read_session() as session:
        return [(obj, int(count)) for obj, count in session.execute(query).all()]


def object_key(item: tuple[str, int]) -> str:
    return item[0]


def list_records(
    gw: Gateway, obj: str, filters: Mapping[str, str], limit: int, after: str | None
) -> list[Record]:
    """Up to ``limit`` records of ``obj`` matching ``filters``, by external id past ``after``."""
    query = select(Record).where(Record.object == obj, *_conditions(filters))
    if after is not None:
        query = query.where(Record.external_id > after)
    with gw.db.read_session() as session:
        return list(session.scalars(query.order_by(Record.external_id).limit(limit)))


def record_key(record: Record) -> str:
    return record.external_id


def _conditions(filters: Mapping[str, str]) -> list[ColumnElement[bool]]:
    conditions = []
    field, value = filters.get("field"), filters.get("value")
    if bool(field) != (value is not None):
        raise ValidationFailed(
            "field and value filter together: the records whose field has that value",
            details=[Detail("value" if field else "field", "give both, or neither")],
        )
    if field and value is not None:
        conditions.append(_field_text(field) == value)
    if filters.get("updated_since"):
        since = parse_time(filters["updated_since"], "updated_since")
        conditions.append(Record.updated_at >= since)
    if filters.get("updated_until"):
        conditions.append(Record.updated_at < parse_time(filters["updated_until"], "updated_until"))
    if filters.get("contains"):
        conditions.append(_contains(filters["contains"]))
    return conditions


def _field_text(field: str) -> ColumnElement[Any]:
    """A field's value as text, the same on both databases for strings and numbers."""
    if not FIELD_NAME.fullmatch(field):
        raise ValidationFailed(
            f"{field!r} is not a field name",
            details=[Detail("field", "letters, digits, '_' and '-', up to 100 of them")],
        )
    return cast(Record.fields[field].as_string(), String)


def _contains(text: str) -> ColumnElement[bool]:
    """Records whose external id or any field holds ``text``, ignoring case."""
    return or_(
        func.lower(Record.external_id).contains(text.lower(), autoescape=True),
        json_holds(Record.fields, text),
    )


def get_record(gw: Gateway, obj: str, external_id: str) -> Record:
    with gw.db.read_session() as session:
        record = session.get(Record, (obj, external_id))
    if record is None:
        raise NotFound.of(f"{obj} record", external_id)
    return record


def delete_record(gw: Gateway, obj: str, external_id: str) -> None:
    """Remove a record from the store. What last wrote it stays known, so that a replay of an
    older event is still refused as stale rather than writing the record back out of order."""
    statement = delete(Record).where(Record.object == obj, Record.external_id == external_id)
    with gw.db.session() as session:
        removed = session.execute(statement.returning(Record.object)).all()
    if not removed:
        raise NotFound.of(f"{obj} record", external_id)


def record_history(gw: Gateway, obj: str, external_id: str, limit: int) -> list[EventResult]:
    """The latest ``limit`` upserts that wrote the record, newest first."""
    query = (
        select(EventResult)
        .where(
            EventResult.target == LocalTarget.name,
            EventResult.outcome.in_(WRITTEN),
            EventResult.object == obj,
            EventResult.external_id == external_id,
        )
        .order_by(EventResult.id.desc())
        .limit(limit)
    )
    with gw.db.read_session() as session:
        return list(session.scalars(query))

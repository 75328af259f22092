"""The embedded local record store: a target in the gateway's own database.

It writes inside the worker's transaction, so an event's status and its records commit together:
a worker killed mid-batch leaves neither behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from gateway.models import Record
from gateway.storage.bulk import insert_rows, rows_by_keys, update_rows
from gateway.targets.base import UpsertRequest, UpsertResult


class LocalTarget:
    """Upserts into the ``records`` table; fields merge, later writes win per field."""

    name = "local"

    def __init__(self, session: Session) -> None:
        self._session = session

    def upsert(self, requests: Sequence[UpsertRequest]) -> list[UpsertResult]:
        keys = list(dict.fromkeys((r.object, r.external_id) for r in requests))
        existing = self._load(keys)
        before = set(existing)
        stamp = datetime.now(UTC)
        results = []
        for request in requests:
            key = (request.object, request.external_id)
            created = key not in existing
            record = existing.setdefault(
                key, {"fields": {}, "created_at": stamp, "external_id_field": ""}
            )
            record["fields"] = {**record["fields"], **request.record()}
            record["external_id_field"] = request.external_id_field
            record["source_event_id"] = _event_id(request.source_event_id)
            results.append(UpsertResult(ok=True, created=created))
        self._save(existing, before, stamp)
        return results

    def _load(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        columns = ("object", "external_id", "fields", "created_at", "external_id_field")
        return {
            (obj, ext): {"fields": dict(fields), "created_at": created, "external_id_field": field}
            for obj, ext, fields, created, field in rows_by_keys(
                self._session, Record.__table__, keys, columns
            )
        }

    def _save(
        self,
        records: dict[tuple[str, str], dict[str, Any]],
        before: set[tuple[str, str]],
        stamp: datetime,
    ) -> None:
        rows = [
            {"object": obj, "external_id": ext, "updated_at": stamp, **record}
            for (obj, ext), record in records.items()
        ]
        new = [row for row in rows if (row["object"], row["external_id"]) not in before]
        changed = [row for row in rows if (row["object"], row["external_id"]) in before]
        insert_rows(self._session, Record.__table__, new)
        update_rows(self._session, Record.__table__, ("object", "external_id"), changed)


def _event_id(value: str | None) -> int | None:
    return int(value) if value is not None and str(value).isdigit() else None

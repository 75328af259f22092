"""What a worker's attempt leaves behind: history rows, events' new states, write marks and the
targets' API usage, written in one transaction per batch (or part of one)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.models import Event, EventResult, TargetUsage, WriteMark
from gateway.storage.bulk import insert_rows, rows_by_keys, update_rows

#: A record of a target: (target, object, external id).
RecordKey = tuple[str, str, str]


class BatchWrites(Protocol):
    """A worker's writes for a batch of events, in steps that the storage orders and wraps in
    transactions as its locking allows (:meth:`gateway.storage.base.Storage.write_batch`)."""

    def records(self) -> set[RecordKey]:
        """The records the batch's upserts touch."""

    def remote_records(self) -> set[RecordKey]:
        """The records of remote targets the batch's upserts touch."""

    def parts(self, records: int) -> Sequence[BatchWrites]:
        """The batch in runs, in order, each touching at most ``records`` records."""

    def keep_leased(self, session: Session) -> None:
        """Drop the events whose lease this worker lost; lock the others' rows to the commit."""

    def check_stale(self, session: Session, *, remote: bool, local: bool) -> None:
        """Find the upserts older than what last wrote their records (remote or local ones)."""

    def call_remote(self) -> None:
        """Send the remote targets their upserts (no transaction needs to be open)."""

    def finish(self, session: Session) -> None:
        """Apply the local upserts and record how every event ended."""


def write_marks(session: Session, keys: Sequence[RecordKey]) -> dict[RecordKey, Any]:
    """The ordering value that last wrote each of these records."""
    columns = ("target", "object", "external_id", "order_value")
    return {
        (t, o, x): value
        for t, o, x, value in rows_by_keys(session, WriteMark.__table__, sorted(keys), columns)
    }


def write_results(
    session: Session,
    results: Sequence[dict[str, Any]],
    changes: Sequence[dict[str, Any]],
    marks: dict[RecordKey, tuple[Any, int]],
) -> None:
    """Insert history rows, update events (by id) and set each record's write mark
    (ordering value, event id)."""
    insert_rows(session, EventResult.__table__, results)
    _save_marks(session, marks)
    update_rows(session, Event.__table__, ("id",), changes)


def applied_upserts(session: Session, replayed_after: dict[int, int]) -> list[EventResult]:
    """The upserts applied by attempts of these events after the given attempt number."""
    query = select(EventResult).where(
        EventResult.event_id.in_(replayed_after),
        EventResult.outcome.in_(("created", "updated")),
    )
    return [row for row in session.scalars(query) if row.attempt > replayed_after[row.event_id]]


def save_usage(session: Session, usage: dict[str, tuple[int, int]], now: datetime) -> None:
    """Each target's API usage as it last reported it: (used, limit)."""
    for name, (used, limit) in usage.items():
        session.merge(TargetUsage(target=name, used=used, limit=limit, updated_at=now))


def _save_marks(session: Session, marks: dict[RecordKey, tuple[Any, int]]) -> None:
    table = WriteMark.__table__
    keys = ("target", "object", "external_id")
    existing = {tuple(row) for row in rows_by_keys(session, table, list(marks), keys)}
    rows = [
        {"target": t, "object": o, "external_id": x, "order_value": v, "event_id": e}
        for (t, o, x), (v, e) in marks.items()
    ]
    insert_rows(session, table, [r for r in rows if tuple(r[k] for k in keys) not in existing])
    update_rows(session, table, keys, [r for r in rows if tuple(r[k] for k in keys) in existing])

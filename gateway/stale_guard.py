"""The stale-write guard applied to a batch: which upserts are not sent, and what the history
says about each (the rule itself is :mod:`gateway.staleness`)."""

from __future__ import annotations

from typing import Any

from gateway.mapping.functions import show
from gateway.models import EventResult
from gateway.planning import Planned
from gateway.staleness import compare
from gateway.storage.results import RecordKey


def guarded_records(planned: list[Planned]) -> list[RecordKey]:
    """The records whose last ordering value the guard needs to know."""
    return sorted({p.record for p in planned if p.upsert.guarded})


def mark_stale(planned: list[Planned], marks: dict[RecordKey, Any]) -> None:
    """Skip upserts older than what last wrote the record; later events in the batch count too.

    A value that cannot be ordered against the last one (``gateway.staleness``), or a null one,
    is written, and its history says so.
    """
    current = dict(marks)
    for p in planned:
        if not p.upsert.guarded or p.applied:
            continue
        value = p.upsert.order_value
        key = p.record
        if value is None:
            if key in current:
                p.note = (
                    f"order_by yields null, so this write was not checked against"
                    f" {show(current[key])}, the value that last wrote the record"
                )
            continue
        if key in current:
            order = compare(value, current[key])
            if order == -1:
                p.stale = True
                p.note = f"order_by value {show(value)} is older than {show(current[key])}"
                continue
            if order is None:
                p.note = (
                    f"order_by value {show(value)} cannot be ordered against"
                    f" {show(current[key])}; written anyway"
                )
        current[key] = value


def replayed_after(planned: list[Planned]) -> dict[int, int]:
    """The retried events among the planned ones, with the attempts made before their last
    replay: the upserts their later attempts applied are not sent again."""
    return {p.event.id: p.event.attempts_before_replay for p in planned if p.event.attempts > 1}


def mark_applied(planned: list[Planned], applied: list[EventResult]) -> None:
    """Skip the upserts an earlier attempt of the same event already applied.

    A batch a target failed part-way through leaves some of an event's upserts applied and
    others to retry; sending those again would apply them twice, and would overwrite whatever
    another event wrote to the record meanwhile.
    """
    by_key = {_applied_key(row): row for row in applied}
    for p in planned:
        earlier = by_key.get(_planned_key(p))
        if earlier is not None:
            p.applied = True
            p.note = f"applied by attempt {earlier.attempt} ({earlier.outcome}); not sent again"


def _applied_key(row: EventResult) -> tuple[Any, ...]:
    """What makes two attempts' upserts the same: event, webhook record, mapping version,
    upsert and record (see :func:`_planned_key`)."""
    record = (row.target, row.object, row.external_id)
    return (row.event_id, row.webhook_id, row.mapping_version, row.upsert_key, *record)


def _planned_key(p: Planned) -> tuple[Any, ...]:
    return (p.event.id, p.route.webhook_id, p.mapping_version, p.upsert.key, *p.record)

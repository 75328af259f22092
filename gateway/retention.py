"""Retention: old delivered events and their raw deliveries are purged in batches.

Failed and dead events are kept until they are replayed or purged explicitly: they are the
ones an admin still has to act on. The newest event and the newest delivery are always kept:
SQLite numbers a new row from the largest id in its table, so purging them would hand their
ids out again, and a record's ``source_event_id`` or a log line would name the wrong event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, delete, exists, func, not_, select
from sqlalchemy.orm import Session

from gateway.models import NEEDS_ACTION, SETTLED, Delivery, Event, EventResult
from gateway.services import Gateway

BATCH = 1000


@dataclass(frozen=True)
class Purged:
    events: int
    deliveries: int


def purge(
    gw: Gateway,
    older_than: timedelta,
    *,
    include_failed: bool = False,
    dry_run: bool = False,
    progress: Callable[[Purged], None] = lambda so_far: None,
) -> Purged:
    """Delete settled events received before ``now - older_than``, then orphaned deliveries;
    with ``dry_run``, only count what would go. ``progress`` is told what is purged so far
    after each batch.

    Each batch is its own short transaction, so receiving and processing go on meanwhile.
    """
    cutoff = datetime.now(UTC) - older_than
    statuses = SETTLED + NEEDS_ACTION if include_failed else SETTLED
    purgeable = and_(
        Event.received_at < cutoff,
        Event.status.in_(statuses),
        Event.id < select(func.max(Event.id)).scalar_subquery(),
    )
    old_deliveries = and_(
        Delivery.received_at < cutoff,
        Delivery.id < select(func.max(Delivery.id)).scalar_subquery(),
    )
    if dry_run:
        # A delivery goes once no event of it stays: none, or all of them purgeable.
        staying = and_(Event.delivery_id == Delivery.id, not_(purgeable))
        with gw.db.read_session() as session:
            events = session.scalar(select(func.count()).where(purgeable)) or 0
            deliveries = session.scalar(
                select(func.count()).where(old_deliveries, ~exists().where(staying))
            )
        return Purged(events=events, deliveries=deliveries or 0)
    events = _purge_events(gw, purgeable, lambda n: progress(Purged(n, 0)))
    deliveries = _purge_deliveries(gw, old_deliveries, lambda n: progress(Purged(events, n)))
    return Purged(events=events, deliveries=deliveries)


def _purge_events(
    gw: Gateway, purgeable: ColumnElement[bool], batched: Callable[[int], None]
) -> int:
    def drop(session: Session, ids: list[int]) -> int:
        # Asked again as each row is deleted: on PostgreSQL an event chosen as settled may
        # have been replayed since, and a pending event and its history must stay.
        dropped = list(
            session.scalars(delete(Event).where(Event.id.in_(ids), purgeable).returning(Event.id))
        )
        session.execute(delete(EventResult).where(EventResult.event_id.in_(dropped)))
        return len(dropped)

    return _in_batches(gw, select(Event.id).where(purgeable).order_by(Event.id), drop, batched)


def _purge_deliveries(gw: Gateway, old: ColumnElement[bool], batched: Callable[[int], None]) -> int:
    def drop(session: Session, ids: list[int]) -> int:
        return len(
            session.scalars(
                delete(Delivery).where(Delivery.id.in_(ids)).returning(Delivery.id)
            ).all()
        )

    orphaned = select(Delivery.id).where(old, ~exists().where(Event.delivery_id == Delivery.id))
    return _in_batches(gw, orphaned.order_by(Delivery.id), drop, batched)


def _in_batches(
    gw: Gateway,
    ids: Select[int],
    drop: Callable[[Session, list[int]], int],
    batched: Callable[[int], None],
) -> int:
    """Delete what ``ids`` selects, BATCH rows per short transaction, telling ``batched`` the
    number deleted so far after each; the number deleted."""
    total = 0
    while True:
        with gw.db.session() as session:
            chosen = list(session.scalars(ids.limit(BATCH)))
            if not chosen:
                return total
            total += drop(session, chosen)
        batched(total)

"""Retention: old delivered events and their raw deliveries are purged in batches.

Failed and dead events are kept until they are replayed or purged explicitly: they are the
ones an admin still has to act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, exists, select

from gateway.core import Gateway
from gateway.models import Delivery, Event, EventResult, EventStatus

#: Finished events that need nothing more from anyone.
SETTLED = (
    EventStatus.DELIVERED,
    EventStatus.IGNORED,
    EventStatus.DUPLICATE,
    EventStatus.UNROUTED,
    EventStatus.STALE,
)
NEEDS_ACTION = (EventStatus.FAILED, EventStatus.DEAD)
BATCH = 1000


@dataclass(frozen=True)
class Purged:
    events: int
    deliveries: int


def purge(gw: Gateway, older_than: timedelta, *, include_failed: bool = False) -> Purged:
    """Delete settled events received before ``now - older_than``, then orphaned deliveries.

    Each batch is its own short transaction, so receiving and processing go on meanwhile.
    """
    cutoff = datetime.now(UTC) - older_than
    statuses = SETTLED + NEEDS_ACTION if include_failed else SETTLED
    events = _purge_events(gw, cutoff, statuses)
    return Purged(events=events, deliveries=_purge_deliveries(gw, cutoff))


def _purge_events(gw: Gateway, cutoff: datetime, statuses: tuple[str, ...]) -> int:
    query = (
        select(Event.id)
        .where(Event.received_at < cutoff, Event.status.in_(statuses))
        .order_by(Event.id)
        .limit(BATCH)
    )
    total = 0
    while True:
        with gw.db.session() as session:
            ids = list(session.scalars(query))
            if not ids:
                return total
            session.execute(delete(EventResult).where(EventResult.event_id.in_(ids)))
            session.execute(delete(Event).where(Event.id.in_(ids)))
        total += len(ids)


def _purge_deliveries(gw: Gateway, cutoff: datetime) -> int:
    orphaned = (
        select(Delivery.id)
        .where(Delivery.received_at < cutoff)
        .where(~exists().where(Event.delivery_id == Delivery.id))
        .order_by(Delivery.id)
        .limit(BATCH)
    )
    total = 0
    while True:
        with gw.db.session() as session:
            ids = list(session.scalars(orphaned))
            if not ids:
                return total
            session.execute(delete(Delivery).where(Delivery.id.in_(ids)))
        total += len(ids)

"""Read-only questions only the console asks: names for ids, the overview, replay progress."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select

from gateway import event_log
from gateway.metrics import waiting_since
from gateway.models import Delivery, Event, EventStatus, Group, Webhook
from gateway.services import Gateway

#: Statuses a replayed event passes through before it settles (held: until its group resumes).
IN_FLIGHT = (EventStatus.PENDING, EventStatus.PROCESSING, EventStatus.HELD)
MINUTE_FORMAT = "%Y-%m-%d %H:%M"


def group_names(gw: Gateway) -> dict[str, str]:
    with gw.db.read_session() as session:
        return dict(session.execute(select(Group.id, Group.name).order_by(Group.name)).all())


def webhook_labels(gw: Gateway, ids: Iterable[str | None]) -> dict[str, str]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    with gw.db.read_session() as session:
        query = select(Webhook.id, Webhook.label).where(Webhook.id.in_(wanted))
        return dict(session.execute(query).all())


def mapping_users(gw: Gateway, name: str | None = None) -> dict[str, list[Webhook]]:
    """The webhook records using each mapping (or only ``name``), so admins see what a save hits."""
    query = select(Webhook).where(Webhook.mapping_name.is_not(None)).order_by(Webhook.label)
    if name is not None:
        query = query.where(Webhook.mapping_name == name)
    users: dict[str, list[Webhook]] = {}
    with gw.db.read_session() as session:
        for webhook in session.scalars(query):
            users.setdefault(webhook.mapping_name or "", []).append(webhook)
    return users


def newest_event_id(gw: Gateway) -> int:
    with gw.db.read_session() as session:
        return int(session.scalar(select(func.max(Event.id))) or 0)


@dataclass(frozen=True)
class ReplayBatch:
    """A bulk replay: the events matching ``filters`` up to ``last_id``, requeued at ``at``."""

    filters: Mapping[str, Any]
    last_id: int
    at: datetime


def replay_progress(gw: Gateway, batch: ReplayBatch) -> dict[str, int]:
    """Counts by status of the batch's events still queued or settled since the replay."""
    query = (
        event_log.filtered(select(Event.status, func.count()), batch.filters)
        .where(Event.id <= batch.last_id)
        .where(or_(Event.status.in_(IN_FLIGHT), Event.processed_at >= batch.at))
        .group_by(Event.status)
    )
    with gw.db.read_session() as session:
        return {status: int(count) for status, count in session.execute(query).all()}


@dataclass(frozen=True)
class Overview:
    """What the overview page shows."""

    per_minute: list[tuple[datetime, int]]
    queue: dict[str, int]
    #: When the pending event that has waited longest fell due (:func:`waiting_since`).
    waiting_since: datetime | None

    @property
    def deliveries(self) -> int:
        return sum(count for _, count in self.per_minute)

    @property
    def busiest(self) -> int:
        return max((count for _, count in self.per_minute), default=0)


def overview(gw: Gateway, minutes: int = 60) -> Overview:
    end = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(minutes=minutes)
    minute = gw.db.utc_minute(Delivery.received_at)
    with gw.db.read_session() as session:
        counted = session.execute(
            select(minute, func.count()).where(Delivery.received_at >= start).group_by(minute)
        ).all()
        # People look now and then, and expect what they just saw processed to be counted.
        queue = gw.status_counts.read(session, recount=True)
        waiting = waiting_since(session)
    by_minute = {key: int(count) for key, count in counted}
    slots = [start + timedelta(minutes=i) for i in range(minutes)]
    per_minute = [(slot, by_minute.get(slot.strftime(MINUTE_FORMAT), 0)) for slot in slots]
    return Overview(per_minute, queue, waiting)

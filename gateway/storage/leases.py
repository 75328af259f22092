"""Leases on events: a worker claims due events for a while, and holds them to its commit.

Claims are leases: a worker that dies mid-batch simply lets them expire and another worker takes
the events over. Every lease and due time is read on the database's clock, which all workers
share, so that a worker whose own clock runs ahead never takes a live lease for an expired one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.orm import Session

from gateway.models import Event, EventResult, EventStatus, Group
from gateway.storage.bulk import insert_rows


@dataclass(frozen=True)
class Lease:
    """What a worker asks of a claim."""

    worker_id: str
    #: How many events at most.
    limit: int
    #: How long the events are the worker's before another may take them over.
    duration_s: float
    #: An event whose lease ran out after this many attempts is given up as dead.
    max_attempts: int


@dataclass(frozen=True)
class Claim:
    """The events a claim leased, oldest first, and those it gave up as dead instead (with
    their history's message)."""

    events: list[Event]
    given_up: list[tuple[Event, str]]


def claim(session: Session, lease: Lease, now: datetime) -> Claim:
    """Lease up to ``lease.limit`` due events: expired leases first, then pending events.

    Both are found in the queue index (status, due time) in its own order, so a claim reads
    about as many rows as it takes. In id order it would walk past every settled event older
    than the first due one: after a large backlog drains, most of the table. Events due at
    the same time (those of one commit) are taken in the order received.

    An expired lease is an attempt that never finished: its worker stopped, or held the batch
    past its lease. Its history says so, and an event whose attempts are all used up that way
    is dead rather than claimed again, so that one event that takes its worker down cannot do
    so forever.
    """
    leased = {
        "status": EventStatus.PROCESSING,
        "claimed_by": lease.worker_id,
        "claim_expires_at": now + timedelta(seconds=lease.duration_s),
        "attempts": Event.attempts + 1,
    }
    expired = and_(Event.status == EventStatus.PROCESSING, Event.claim_expires_at < now)
    exhausted = Event.attempts >= lease.max_attempts
    wanted = lease.limit
    given_up = list(
        session.scalars(
            _lease(and_(expired, exhausted), wanted, {**_GIVEN_UP, "processed_at": now})
        )
    )
    events = list(session.scalars(_lease(and_(expired, ~exhausted), wanted, leased)))
    dead = [_unfinished_row(e, now, 0, EventStatus.DEAD) for e in given_up]
    again = [_unfinished_row(e, now, 1, EventStatus.PENDING) for e in events]
    insert_rows(session, EventResult.__table__, dead + again)
    if len(events) < wanted:
        pending = and_(
            Event.status == EventStatus.PENDING,
            Event.next_attempt_at <= now,
            Event.group_id.not_in(_PAUSED_GROUPS),
        )
        events += session.scalars(_lease(pending, wanted - len(events), leased))
    messages = [row["message"] for row in dead]
    return Claim(sorted(events, key=lambda e: e.id), list(zip(given_up, messages, strict=True)))


def still_leased(session: Session, worker_id: str, attempts: dict[int, int]) -> set[int]:
    """Of the events ``worker_id`` leased (id: attempts when leased), those it still leases,
    their rows locked to the commit.

    A batch held past its lease may have lost events to another worker's claim, which takes
    them over or gives them up as dead; this attempt's results would overwrite what that worker
    decided, so they are dropped. While locked, an event is skipped by every claim
    (``SKIP LOCKED``), so a lease held to here is held to the commit.
    """
    held: set[int] = set()
    for ids in _chunks(list(attempts), 500):
        query = (
            select(Event.id, Event.attempts)
            .where(
                Event.id.in_(ids),
                Event.status == EventStatus.PROCESSING,
                Event.claimed_by == worker_id,
            )
            .with_for_update()
        )
        held.update(i for i, n in session.execute(query) if attempts[i] == n)
    return held


def _lease(due: ColumnElement[bool], limit: int, lease: dict[str, Any]) -> Any:
    """Lease ``limit`` events matching ``due``, skipping rows other workers are leasing."""
    candidates = (
        select(Event.id)
        .where(due)
        .order_by(Event.next_attempt_at, Event.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (
        update(Event)
        .where(Event.id.in_(candidates.scalar_subquery()))
        .values(**lease)
        .returning(Event)
        .execution_options(synchronize_session=False)
    )


#: A paused group's events are held, but one its worker had leased when the group was paused
#: comes back pending when it is to be retried: it waits for the group's resumption too.
_PAUSED_GROUPS = select(Group.id).where(Group.paused).scalar_subquery()

#: What an event whose last attempt never finished becomes when it has no attempt left.
_GIVEN_UP = {
    "status": EventStatus.DEAD,
    "last_error": "its last attempt never finished and no attempt is left; replay it once the"
    " cause is found (the worker's log has it)",
    "claimed_by": None,
    "claim_expires_at": None,
    "next_attempt_at": None,
}

#: Every result row carries every column, so the rows of a batch go in one executemany.
EMPTY_RESULT = dict.fromkeys(
    (
        "webhook_id",
        "mapping_name",
        "mapping_version",
        "upsert_key",
        "target",
        "object",
        "external_id",
        "outcome",
        "record_id",
    )
)


def _unfinished_row(event: Event, now: datetime, leased_since: int, status: str) -> dict[str, Any]:
    """The history row of an attempt that never finished; ``leased_since``: attempts counted
    since it began (1 when the event was just leased again)."""
    attempt = event.attempts_before_replay + event.attempts - leased_since
    ending = "no attempt is left" if status == EventStatus.DEAD else "it is tried again"
    return {
        **EMPTY_RESULT,
        "event_id": event.id,
        "attempt": attempt,
        "at": now,
        "status": status,
        "message": f"attempt {attempt} never finished: its worker stopped, or held it past the"
        f" claim timeout; {ending}",
    }


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

"""The durable inbox: one refused delivery does not sink its batch, a late one is answered."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from gateway.errors import StoreUnavailable
from gateway.inbox import LATE, Inbox, NewDelivery, group_state
from gateway.intake import IncomingEvent
from gateway.models import Delivery, Event, Group


def _delivery(
    group_id: str, event_type: str, state: tuple[Any, ...] | None = None, body: bytes = b"{}"
) -> NewDelivery:
    return NewDelivery(
        group_id=group_id,
        registered_events=frozenset({"inventory.moved"}),
        method="POST",
        remote_addr="127.0.0.1",
        content_type="application/json",
        headers={},
        body=body,
        received_at=datetime.now(UTC),
        events=[IncomingEvent(event_type, f"id:{event_type}", {}, None)],
        group_state=state,
    )


def test_a_delivery_the_database_refuses_does_not_fail_its_neighbours(
    gw: Any, group_factory: Any
) -> None:
    if gw.db.is_sqlite:
        pytest.skip("SQLite stores NUL characters; PostgreSQL refuses them in text")
    group = group_factory(events=["inventory.moved"])
    good, bad = _delivery(group["id"], "inventory.moved"), _delivery(group["id"], "bad\x00type")
    refused, stored = gw.inbox._commit([(bad, gw.inbox.slot()), (good, gw.inbox.slot())])

    assert isinstance(refused, StoreUnavailable)
    assert stored.accepted == 1


def test_a_delivery_not_committed_in_time_fails_and_the_writer_goes_on(
    gw: Any, group_factory: Any
) -> None:
    inbox = Inbox(gw.db, commit_timeout_s=0.3)
    group_id = group_factory(events=["inventory.moved"])["id"]
    with gw.db.session() as session:
        # Holds SQLite's write lock, or on PostgreSQL the group row the writer reads to commit.
        group = session.scalars(select(Group).where(Group.id == group_id).with_for_update()).one()
        state = group_state(group)
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match=LATE):
            inbox.store(_delivery(group_id, "inventory.moved", state))
        waited = time.monotonic() - started

    assert 0.3 <= waited < 3
    assert inbox.store(_delivery(group_id, "inventory.moved", state)).duplicates == 1


def test_a_batch_mixing_new_and_repeated_events_tells_each_delivery_which_are_which(
    gw: Any, group_factory: Any
) -> None:
    group_id = group_factory(events=["inventory.moved"])["id"]
    (earlier,) = gw.inbox._commit([(_delivery(group_id, "inventory.moved"), gw.inbox.slot())])
    batch = [
        _delivery(group_id, "inventory.counted"),
        _delivery(group_id, "inventory.moved"),  # a retry of the earlier one
        _delivery(group_id, "inventory.moved"),  # and again, in the same batch
        _delivery(group_id, "inventory.found"),
    ]

    receipts = gw.inbox._commit([(delivery, gw.inbox.slot()) for delivery in batch])

    assert earlier.accepted == 1
    counts = [(r.accepted + r.ignored, r.duplicates) for r in receipts]
    assert counts == [(1, 0), (0, 1), (0, 1), (1, 0)]


def test_each_delivery_of_a_batch_is_stored_under_the_id_its_receipt_gives(
    gw: Any, group_factory: Any
) -> None:
    group_id = group_factory(events=["inventory.moved"])["id"]
    types = ["inventory.moved", "inventory.counted", "inventory.found"]

    def commit(round_: int) -> list[Any]:
        batch = [
            _delivery(group_id, f"{t}.{round_}", body=f'{{"type":"{t}.{round_}"}}'.encode())
            for t in types
        ]
        return gw.inbox._commit([(delivery, gw.inbox.slot()) for delivery in batch])

    first, second = commit(1), commit(2)

    with gw.db.read_session() as session:
        for round_, receipts in ((1, first), (2, second)):
            for t, receipt in zip(types, receipts, strict=True):
                delivery = session.get(Delivery, receipt.delivery_id)
                events = session.scalars(
                    select(Event.type).where(Event.delivery_id == receipt.delivery_id)
                ).all()
                assert delivery is not None
                assert delivery.body == f'{{"type":"{t}.{round_}"}}'.encode()
                assert events == [f"{t}.{round_}"]
    ids = [r.delivery_id for r in first + second]
    assert ids == sorted(set(ids))

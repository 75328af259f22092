"""The durable inbox: one delivery the database refuses does not sink its batch."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.errors import StoreUnavailable
from gateway.inbox import NewDelivery, Slot
from gateway.intake import IncomingEvent


def _delivery(group_id: str, event_type: str) -> NewDelivery:
    return NewDelivery(
        group_id=group_id,
        registered_events=frozenset({"inventory.moved"}),
        method="POST",
        remote_addr="127.0.0.1",
        content_type="application/json",
        headers={},
        body=b"{}",
        received_at=datetime.now(UTC),
        events=[IncomingEvent(event_type, f"id:{event_type}", {}, None)],
    )


def test_a_delivery_the_database_refuses_does_not_fail_its_neighbours(
    gw: Any, group_factory: Any
) -> None:
    if gw.db.is_sqlite:
        pytest.skip("SQLite stores NUL characters; PostgreSQL refuses them in text")
    group = group_factory(events=["inventory.moved"])
    good, bad = _delivery(group["id"], "inventory.moved"), _delivery(group["id"], "bad\x00type")
    slots = [Slot(), Slot()]

    gw.inbox._commit([(bad, slots[0]), (good, slots[1])])

    with pytest.raises(StoreUnavailable):
        slots[0].wait(timeout_s=5)
    assert slots[1].wait(timeout_s=5).accepted == 1

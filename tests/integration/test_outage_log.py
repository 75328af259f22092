"""A database outage is two lines in the log, not a traceback per failed commit; a delivery
the database refuses is a line of its own."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.errors import StoreUnavailable
from gateway.intake import IncomingEvent
from gateway.services import Gateway
from gateway.storage.inbox import NewDelivery
from tests.postgres import start_server, stop_server

REFUSED = 20


def _delivery(group_id: str, method: Any = "POST") -> NewDelivery:
    return NewDelivery(
        group_id=group_id,
        registered_events=frozenset({"inventory.cycle_count"}),
        method=method,
        remote_addr="127.0.0.1",
        content_type="application/json",
        headers={},
        body=b"{}",
        received_at=datetime.now(UTC),
        events=[IncomingEvent("inventory.cycle_count", "d-1", {}, None)],
    )


def _cycle_count(n: int) -> bytes:
    return json.dumps(
        {"id": f"d-{n}", "eventTimestamp": n, "topic": "inventory.cycle_count", "data": {}}
    ).encode()


def test_a_postgresql_outage_is_one_line_when_it_starts_and_one_when_it_ends(
    gw: Gateway, group_factory: Any, deliver: Any, caplog: pytest.LogCaptureFixture
) -> None:
    if gw.db.is_sqlite:
        pytest.skip("an embedded SQLite file cannot be stopped")
    group = group_factory()
    assert deliver(group, _cycle_count(0)).status_code == 200
    caplog.set_level(logging.INFO)
    stop_server(gw.settings.database_url)
    try:
        during = [deliver(group, _cycle_count(n)).status_code for n in range(1, REFUSED + 1)]
    finally:
        start_server(gw.settings.database_url)
    after = deliver(group, _cycle_count(REFUSED + 1)).status_code

    assert (during, after) == ([503] * REFUSED, 200)
    started, ended = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "1 deliveries not stored (told 503)" in started.getMessage()
    assert "Connection refused" in started.getMessage()  # the driver's reason, in the line
    assert "the database takes commits again after" in ended.getMessage()
    assert f"{REFUSED} deliveries were not stored (told 503) meanwhile" in ended.getMessage()
    assert ended.deliveries == REFUSED  # type: ignore[attr-defined]
    assert not started.exc_info and not ended.exc_info


def test_a_delivery_the_database_refuses_is_a_line_of_its_own_and_no_outage(
    gw: Gateway, group_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    group_id = group_factory()["id"]
    caplog.set_level(logging.INFO)

    with pytest.raises(StoreUnavailable):  # a NOT NULL column refuses it
        gw.inbox.store(_delivery(group_id, method=None))
    gw.inbox.store(_delivery(group_id))

    (refused,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert refused.getMessage().startswith("1 deliveries not stored (told 503)")
    assert "counted, not logged" not in refused.getMessage()
    assert refused.group_ids == [group_id]  # type: ignore[attr-defined]

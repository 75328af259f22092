"""Workers killed mid-batch lose nothing: claims expire, others take over, effects happen once."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from sqlalchemy import func, select

from gateway.models import Event, EventResult, Record
from tests.payloads import xtnd_delivery

NOTIFICATIONS_PER_DELIVERY = 100
DELIVERIES = 12
TOTAL = NOTIFICATIONS_PER_DELIVERY * DELIVERIES
ORDERS = {
    "name": "orders",
    "upserts": [
        {
            "key": "order",
            "object": "Order__c",
            "external_id_field": "Order_Number__c",
            "external_id": "payload.Details.OrderNumber",
            "fields": {"Status__c": "event.type", "Warehouse__c": "payload.Details.Warehouse"},
        }
    ],
}


def _delivery(n: int) -> bytes:
    orders = [
        {"OrderNumber": f"O-{n}-{i}", "Warehouse": "ADR-1"}
        for i in range(NOTIFICATIONS_PER_DELIVERY)
    ]
    return xtnd_delivery(str(n), orders)


def _count(gw: Any, query: Any) -> int:
    with gw.db.read_session() as session:
        return int(session.scalar(query) or 0)


def _wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_workers_killed_mid_batch_lose_nothing_and_double_nothing(
    admin: Any, group_factory: Any, deliver: Any, gw: Any, start_worker: Any
) -> None:
    admin.put("/mappings/orders", ORDERS)
    group = group_factory(connector="xtnd", function="backend", events=["OrderPicked"])
    admin.post(
        f"/webhooks/{group['template_webhook_id']}/clone",
        {"label": "Picked", "events": ["OrderPicked"], "mapping": "orders"},
    )
    for n in range(DELIVERIES):
        assert deliver(group, _delivery(n)).get_json()["accepted"] == NOTIFICATIONS_PER_DELIVERY
    fast_expiry = {"GATEWAY_WORKER_BATCH_SIZE": "40", "GATEWAY_CLAIM_TIMEOUT_S": "1.5"}
    delivered = select(func.count()).select_from(Event).where(Event.status == "delivered")

    start_worker(**fast_expiry)  # keeps running throughout
    kills = 0
    for _ in range(3):
        victim = start_worker(**fast_expiry)
        held = (
            select(func.count())
            .select_from(Event)
            .where(Event.status == "processing", Event.claimed_by.contains(f":{victim.pid}:"))
        )
        _wait_for(
            lambda q=held: _count(gw, q) > 0 or _count(gw, delivered) == TOTAL,
            30,
            "the victim to hold a batch",
        )
        if _count(gw, delivered) == TOTAL:
            break
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        kills += 1

    _wait_for(lambda: _count(gw, delivered) == TOTAL, 90, "every event to be delivered")

    assert kills >= 1
    assert _count(gw, select(func.count()).select_from(Record)) == TOTAL
    successes = (
        select(func.count())
        .select_from(EventResult)
        .where(EventResult.outcome.in_(["created", "updated"]))
    )
    assert _count(gw, successes) == TOTAL  # each event's upsert committed exactly once
    created = successes.where(EventResult.outcome == "created")
    assert _count(gw, created) == TOTAL

"""Calls-per-second and daily budgets toward targets: events over a limit wait, never fail,
and every worker spends from the same counts in the database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import update

from gateway.config import Settings
from gateway.models import Event, Record, TargetCalls
from gateway.services import Gateway
from gateway.target_limits import TargetLimits
from gateway.worker import Worker
from tests.fakes.receiver import FakeReceiver
from tests.payloads import picked_orders_group, xtnd_delivery

ORDERS = {
    "name": "limited-orders",
    "upserts": [
        {
            "key": "order",
            "object": "Order",
            "external_id_field": "number",
            "external_id": "payload.Details.OrderNumber",
            "fields": {"status": "event.type"},
        }
    ],
}


@pytest.fixture
def limits() -> dict[str, TargetLimits]:
    return {"local": TargetLimits(per_day=3)}


@pytest.fixture
def receiver() -> Iterator[FakeReceiver]:
    with FakeReceiver() as started:
        yield started


@pytest.fixture
def settings(
    settings: Settings, limits: dict[str, TargetLimits], receiver: FakeReceiver
) -> Settings:
    return settings.with_overrides(
        {"target_limits": limits, "max_attempts": 1, "env": receiver.env("HTTP_CRM_")}
    )


@pytest.fixture
def group(admin: Any, group_factory: Any) -> dict[str, Any]:
    return picked_orders_group(admin, group_factory, ORDERS)


def send_orders(deliver: Any, group: dict[str, Any], count: int, first: int = 0) -> None:
    for n in range(first, first + count):
        deliver(group, xtnd_delivery(str(n), [{"OrderNumber": f"O-{n}"}]))


def events(admin: Any) -> list[dict[str, Any]]:
    items = admin.get("/events?limit=500").get_json()["items"]
    return [
        admin.get(f"/events/{e['id']}").get_json() for e in sorted(items, key=lambda e: e["id"])
    ]


def target(admin: Any, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        t for t in admin.get("/targets").get_json()["items"] if t["name"] == name
    )
    return found


def next_window(gw: Gateway, target_name: str) -> None:
    """Move the target's counts to an earlier window and make its waiting events due, as the
    clock passing the window's end would."""
    with gw.db.session() as session:
        session.execute(
            update(TargetCalls)
            .where(TargetCalls.target == target_name)
            .values(period="2000-01-01T00:00:00")
        )
        session.execute(update(Event).values(next_attempt_at=gw.db.now(session)))


def test_events_over_the_daily_budget_wait_until_midnight_without_failing(
    group: dict[str, Any], deliver: Any, worker: Any, admin: Any, gw: Gateway
) -> None:
    send_orders(deliver, group, 5)

    worker.drain()

    seen = events(admin)
    assert [e["status"] for e in seen] == ["delivered"] * 3 + ["pending"] * 2
    waiting = seen[3:]
    assert {e["attempts"] for e in waiting} == {0}  # waiting is no attempt: max_attempts is 1
    assert {e["history"] == [] for e in waiting} == {True}
    assert {e["last_error"] for e in waiting} == {
        "waiting: the daily budget of 3 calls to local is spent"
    }
    due = {datetime.fromisoformat(e["next_attempt_at"]) for e in waiting}
    (midnight,) = due
    assert (midnight.hour, midnight.minute, midnight.second) == (0, 0, 0)
    assert worker.run_once() == 0  # not due before then
    with gw.db.read_session() as session:
        assert session.query(Record).count() == 3


def test_the_overview_says_how_much_is_spent_and_why_events_wait(
    group: dict[str, Any], deliver: Any, worker: Any, admin: Any
) -> None:
    send_orders(deliver, group, 2)
    worker.drain()
    assert target(admin, "local")["limits"] == {
        "calls_per_second": None,
        "calls_per_day": 3,
        "calls_today": 2,
        "remaining_today": 1,
        "waiting": None,
        "waiting_until": None,
    }

    send_orders(deliver, group, 2, first=2)
    worker.drain()

    limits = target(admin, "local")["limits"]
    assert (limits["calls_today"], limits["remaining_today"]) == (3, 0)
    assert limits["waiting"] == "waiting: the daily budget of 3 calls to local is spent"
    assert limits["waiting_until"].endswith("T00:00:00Z")


def test_waiting_events_go_once_the_window_has_passed(
    group: dict[str, Any], deliver: Any, worker: Any, admin: Any, gw: Gateway
) -> None:
    send_orders(deliver, group, 5)
    worker.drain()

    next_window(gw, "local")
    worker.drain()

    assert [e["status"] for e in events(admin)] == ["delivered"] * 5
    assert target(admin, "local")["limits"]["calls_today"] == 2


def test_every_worker_spends_from_the_same_budget(
    group: dict[str, Any], deliver: Any, settings: Settings, admin: Any
) -> None:
    send_orders(deliver, group, 4)
    small = settings.with_overrides({"worker_batch_size": 2})
    first, second = Gateway(small), Gateway(small)
    try:
        assert Worker(first, "one").run_once() == 2
        assert Worker(second, "two").run_once() == 2
    finally:
        first.close()
        second.close()

    assert [e["status"] for e in events(admin)] == ["delivered"] * 3 + ["pending"]


@pytest.mark.parametrize("limits", [{"http:crm": TargetLimits(per_second=2)}])
def test_a_calls_per_second_limit_holds_the_rest_of_a_batch_to_the_next_second(
    group: dict[str, Any],
    deliver: Any,
    worker: Any,
    admin: Any,
    gw: Gateway,
    receiver: FakeReceiver,
) -> None:
    admin.patch(f"/groups/{group['id']}", {"target": "http:crm"})
    send_orders(deliver, group, 5)

    worker.run_once()

    seen = events(admin)
    assert [e["status"] for e in seen] == ["delivered"] * 2 + ["pending"] * 3
    assert sorted(r.body["number"] for r in receiver.received) == ["O-0", "O-1"]
    assert {e["last_error"] for e in seen[2:]} == {
        "waiting: the limit of 2 calls a second to http:crm is reached"
    }
    received = {datetime.fromisoformat(e["next_attempt_at"]) for e in seen[2:]}
    assert {due.microsecond for due in received} == {0}  # the next second's start

    for _ in range(2):
        next_window(gw, "http:crm")
        worker.run_once()

    assert sorted(r.body["number"] for r in receiver.received) == [f"O-{n}" for n in range(5)]
    assert [e["status"] for e in events(admin)] == ["delivered"] * 5

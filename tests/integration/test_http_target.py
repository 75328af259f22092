"""The worker feeding an HTTP receiver: requests as configured, each auth mode, and which
answers are retried, failed or dead.

The receiver is a real HTTPS server on loopback (trustme certificates); the gateway's own
client talks to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from gateway.config import Settings
from tests.fakes.receiver import Answer, FakeReceiver
from tests.payloads import picked_orders_group, xtnd_delivery

ORDERS = {
    "name": "http-orders",
    "upserts": [
        {
            "key": "order",
            "object": "Order",
            "external_id_field": "number",
            "external_id": "payload.Details.OrderNumber",
            "fields": {"status": "event.type", "warehouse": "payload.Details.Warehouse"},
        }
    ],
}
AUTH_MODES = ["none", "bearer", "basic", "oauth2", "standard_webhooks"]


@pytest.fixture
def auth() -> str:
    """The receiver's auth mode, which the target is set up for; tests override it."""
    return "none"


@pytest.fixture
def receiver(auth: str) -> Iterator[FakeReceiver]:
    with FakeReceiver() as started:
        started.auth = auth
        yield started


@pytest.fixture
def target_env(receiver: FakeReceiver) -> dict[str, str]:
    """Extra variables of the target, beside the receiver's own; tests override it."""
    return {}


@pytest.fixture
def settings(settings: Settings, receiver: FakeReceiver, target_env: dict[str, str]) -> Settings:
    return settings.with_overrides(
        {"target": "http:crm", "env": {**receiver.env("HTTP_CRM_"), **target_env}}
    )


@pytest.fixture
def group(admin: Any, group_factory: Any) -> dict[str, Any]:
    return picked_orders_group(admin, group_factory, ORDERS)


def orders(n: int, *numbers: str) -> bytes:
    return xtnd_delivery(str(n), [{"OrderNumber": o, "Warehouse": "W/1"} for o in numbers])


def events(admin: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = admin.get("/events?limit=500").get_json()["items"]
    return sorted(items, key=lambda e: int(e["id"]))


@pytest.mark.parametrize(
    "target_env",
    [
        {
            "HTTP_CRM_METHOD": "PUT",
            "HTTP_CRM_PATH": "/api/{object}s/{external_id}",
            "HTTP_CRM_HEADERS": '{"X-Tenant": "acme"}',
        }
    ],
)
def test_each_upsert_is_a_json_request_to_the_templated_path(
    group: dict[str, Any], deliver: Any, worker: Any, admin: Any, receiver: FakeReceiver
) -> None:
    deliver(group, orders(1, "A 1/2"))
    deliver(group, orders(2, "A 1/2"))

    worker.drain()

    assert [(r.method, r.path) for r in receiver.received] == [("PUT", "/api/Orders/A%201%2F2")] * 2
    first = receiver.received[0]
    assert first.body == {"number": "A 1/2", "status": "OrderPicked", "warehouse": "W/1"}
    assert first.headers["x-tenant"] == "acme"
    assert first.headers["content-type"] == "application/json"
    history = [admin.get(f"/events/{e['id']}").get_json()["history"][0] for e in events(admin)]
    assert [(h["target"], h["outcome"], h["record_id"]) for h in history] == [
        ("http:crm", "created", "r-1"),
        ("http:crm", "updated", "r-1"),
    ]


@pytest.mark.parametrize("auth", AUTH_MODES)
def test_every_auth_mode_gets_its_requests_accepted(
    auth: str, group: dict[str, Any], deliver: Any, worker: Any, admin: Any, receiver: FakeReceiver
) -> None:
    deliver(group, orders(1, "O-1", "O-2"))
    deliver(group, orders(2, "O-3"))

    worker.drain()

    assert [e["status"] for e in events(admin)] == ["delivered"] * 3
    assert sorted(r.body["number"] for r in receiver.received) == ["O-1", "O-2", "O-3"]
    assert receiver.refused == 0
    assert receiver.token_requests == (1 if auth == "oauth2" else 0)  # one token, kept


@pytest.mark.parametrize("auth", ["standard_webhooks"])
def test_standard_webhooks_ids_stay_the_same_across_retries(
    group: dict[str, Any], deliver: Any, worker: Any, receiver: FakeReceiver
) -> None:
    deliver(group, orders(1, "O-1"))
    receiver.answer_next(Answer(503))

    worker.drain()

    first, second = receiver.attempts
    assert receiver.refused == 0  # the library verified both signatures
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert receiver.received == [second]


@pytest.mark.parametrize("auth", ["oauth2"])
def test_an_access_token_the_receiver_no_longer_takes_is_renewed_once(
    group: dict[str, Any], deliver: Any, worker: Any, admin: Any, receiver: FakeReceiver
) -> None:
    deliver(group, orders(1, "O-1"))
    worker.drain()
    receiver.revoke_tokens()
    deliver(group, orders(2, "O-2"))

    worker.drain()

    assert [e["status"] for e in events(admin)] == ["delivered", "delivered"]
    assert receiver.token_requests == 2
    assert receiver.refused == 1


@pytest.mark.parametrize(
    ("answer", "status", "outcome"),
    [
        (Answer(500, "boom"), "pending", "retry"),
        (Answer(502), "pending", "retry"),
        (Answer(429, headers={"Retry-After": "120"}), "pending", "retry"),
        (Answer(408), "pending", "retry"),
        (Answer(400, '{"error": "bad field"}'), "failed", "failed"),
        (Answer(404), "failed", "failed"),
        (Answer(409), "failed", "failed"),
    ],
)
def test_5xx_429_and_408_are_retried_other_refusals_fail(
    answer: Answer,
    status: str,
    outcome: str,
    group: dict[str, Any],
    deliver: Any,
    worker: Any,
    admin: Any,
    receiver: FakeReceiver,
) -> None:
    deliver(group, orders(1, "O-1"))
    receiver.answer_next(answer)

    worker.run_once()

    (event,) = events(admin)
    assert event["status"] == status
    detail = admin.get(f"/events/{event['id']}").get_json()
    assert [h["outcome"] for h in detail["history"]] == [outcome]
    assert f"HTTP {answer.status}" in detail["last_error"]
    assert answer.body in detail["last_error"]


@pytest.mark.parametrize("target_env", [{"HTTP_CRM_TIMEOUT_S": "0.2"}])
def test_a_receiver_that_does_not_answer_in_time_is_retried(
    group: dict[str, Any], deliver: Any, worker: Any, admin: Any, receiver: FakeReceiver
) -> None:
    deliver(group, orders(1, "O-1"))
    receiver.answer_next(Answer(0, hang=True))

    worker.run_once()

    (event,) = events(admin)
    assert event["status"] == "pending"
    assert "receiver unreachable" in event["last_error"]
    worker.drain()
    assert [r.body["number"] for r in receiver.received] == ["O-1"]


@pytest.mark.parametrize("target_env", [{"HTTP_CRM_URL": "https://127.0.0.1:9"}])
def test_a_receiver_refusing_connections_is_retried(
    group: dict[str, Any], deliver: Any, worker: Any, admin: Any
) -> None:
    deliver(group, orders(1, "O-1"))

    worker.run_once()

    (event,) = events(admin)
    assert event["status"] == "pending"
    assert "receiver unreachable" in event["last_error"]


def test_retry_after_sets_the_earliest_next_attempt(
    group: dict[str, Any], deliver: Any, worker: Any, admin: Any, receiver: FakeReceiver
) -> None:
    deliver(group, orders(1, "O-1"))
    receiver.answer_next(Answer(429, headers={"Retry-After": "120"}))

    worker.run_once()

    assert worker.run_once() == 0  # not due again yet
    assert receiver.received == []
    (event,) = events(admin)
    detail = admin.get(f"/events/{event['id']}").get_json()
    due = datetime.fromisoformat(detail["next_attempt_at"])
    assert due - datetime.fromisoformat(event["received_at"]) > timedelta(seconds=100)


def test_a_receiver_down_for_every_attempt_leaves_the_event_dead(
    group: dict[str, Any], deliver: Any, worker: Any, admin: Any, receiver: FakeReceiver
) -> None:
    deliver(group, orders(1, "O-1"))
    receiver.answer_next(*[Answer(503)] * worker.settings.max_attempts)

    worker.drain()

    (event,) = events(admin)
    assert event["status"] == "dead"
    assert event["attempts"] == worker.settings.max_attempts
    assert receiver.received == []


def test_upserts_of_one_record_arrive_in_the_order_of_their_events(
    group: dict[str, Any], deliver: Any, worker: Any, receiver: FakeReceiver
) -> None:
    for n in range(6):
        deliver(group, xtnd_delivery(str(n), [{"OrderNumber": "O-1", "Warehouse": f"W{n}"}]))
        deliver(group, orders(100 + n, f"O-{100 + n}"))

    worker.drain()

    same = [r.body["warehouse"] for r in receiver.received if r.body["number"] == "O-1"]
    assert same == [f"W{n}" for n in range(6)]
    assert len(receiver.received) == 12


def test_a_later_upsert_of_a_record_whose_earlier_one_failed_waits(
    group: dict[str, Any], deliver: Any, worker: Any, admin: Any, receiver: FakeReceiver
) -> None:
    deliver(group, xtnd_delivery("1", [{"OrderNumber": "O-1", "Warehouse": "first"}]))
    deliver(group, xtnd_delivery("2", [{"OrderNumber": "O-1", "Warehouse": "second"}]))
    receiver.answer_next(Answer(503))

    worker.run_once()

    assert [e["status"] for e in events(admin)] == ["pending", "pending"]
    assert receiver.received == []
    worker.drain()
    assert [r.body["warehouse"] for r in receiver.received] == ["first", "second"]


@pytest.mark.parametrize("target_env", [{"HTTP_CRM_CA_BUNDLE": ""}])
def test_an_untrusted_certificate_fails_naming_the_ca_bundle_variable(
    group: dict[str, Any], deliver: Any, worker: Any, admin: Any, receiver: FakeReceiver
) -> None:
    deliver(group, orders(1, "O-1"))

    worker.run_once()

    (event,) = events(admin)
    assert event["status"] == "failed"
    assert "HTTP_CRM_CA_BUNDLE" in admin.get(f"/events/{event['id']}").get_json()["last_error"]


@pytest.mark.parametrize("target_env", [{"HTTP_CRM_URL": ""}])
def test_stored_credentials_configure_the_target_and_are_never_shown(
    group: dict[str, Any], deliver: Any, worker: Any, admin: Any, receiver: FakeReceiver
) -> None:
    receiver.auth = "bearer"
    stored = {
        "HTTP_URL": receiver.origin,
        "HTTP_AUTH": "bearer",
        "HTTP_TOKEN": receiver.bearer_token,
        "HTTP_PATH": "/orders/{external_id}",
    }
    response = admin.put("/targets/http:crm/credentials", stored)
    assert response.status_code == 200, response.get_json()
    assert receiver.bearer_token not in response.get_data(as_text=True)
    deliver(group, orders(1, "O-1"))

    worker.drain()

    assert [r.path for r in receiver.received] == ["/orders/O-1"]
    shown = admin.get("/targets/http:crm/credentials").get_data(as_text=True)
    assert receiver.bearer_token not in shown


def test_credentials_of_another_kind_of_target_are_refused(admin: Any) -> None:
    response = admin.put("/targets/http:crm/credentials", {"SALESFORCE_PASSWORD": "x"})

    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "validation_failed"


def test_a_webhook_record_may_send_the_event_itself_instead_of_upserts(
    group: dict[str, Any], deliver: Any, worker: Any, admin: Any, receiver: FakeReceiver
) -> None:
    made = admin.post(
        f"/webhooks/{group['template_webhook_id']}/clone",
        {"label": "Raw", "events": ["OrderPicked"], "send": "event"},
    )
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["send"] == "event"
    assert made.get_json()["mapping"] is None
    deliver(group, orders(1, "O-1"))

    worker.drain()

    (event,) = events(admin)
    assert event["status"] == "delivered"
    by_path = {r.path: r.body for r in receiver.received}
    assert set(by_path) == {"/Order/O-1", f"/event/{event['id']}"}
    forwarded = by_path[f"/event/{event['id']}"]
    assert (forwarded["id"], forwarded["type"]) == (event["id"], "OrderPicked")
    assert forwarded["group_id"] == group["id"]
    assert forwarded["payload"]["Details"]["OrderNumber"] == "O-1"


def test_what_a_webhook_record_sends_can_be_changed_and_is_checked(
    group: dict[str, Any], admin: Any
) -> None:
    record = admin.get(f"/groups/{group['id']}/webhooks").get_json()["items"][1]
    assert record["send"] == "upserts"

    changed = admin.patch(f"/webhooks/{record['id']}", {"send": "event"})
    assert changed.get_json()["send"] == "event"
    refused = admin.patch(f"/webhooks/{record['id']}", {"send": "payload"})

    assert refused.status_code == 422
    assert admin.get(f"/webhooks/{record['id']}").get_json()["send"] == "event"

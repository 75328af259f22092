"""The worker feeding Salesforce: batched calls, per-record results, faults and API usage.

The org is the in-repo fake Salesforce over TLS on loopback; the real simple-salesforce client
talks to it.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.config import Settings
from gateway.models import TargetCredentials
from gateway.services import Gateway
from gateway.worker import Worker
from tests.fakes.salesforce import (
    ANSWERED,
    REQUEST_LIMIT_EXCEEDED,
    UNAVAILABLE,
    FakeSalesforce,
    SObject,
    slow,
)
from tests.payloads import xtnd_delivery

ORDERS = {
    "name": "sf-orders",
    "upserts": [
        {
            "key": "order",
            "object": "Order__c",
            "external_id_field": "Order_Number__c",
            "external_id": "payload.Details.OrderNumber",
            "fields": {"Status__c": "event.type", "Warehouse__c": "payload.Details.Warehouse"},
        },
        {
            "key": "line",
            "object": "Order_Line__c",
            "for_each": "payload.Details.Rows",
            "external_id_field": "Line_Key__c",
            "external_id": "join('-', [payload.Details.OrderNumber, to_string(item.Position)])",
            "parent": {"key": "order", "relationship": "Order__r"},
            "fields": {"Product__c": "item.ProductNumber"},
        },
    ],
}


@pytest.fixture
def fake() -> Iterator[FakeSalesforce]:
    objects = [
        SObject(
            "Order__c",
            external_ids=("Order_Number__c",),
            fields=frozenset({"Status__c", "Warehouse__c"}),
        ),
        SObject(
            "Order_Line__c",
            external_ids=("Line_Key__c",),
            lookups={"Order__r": "Order__c"},
            key_prefix="a01",
        ),
    ]
    with FakeSalesforce(objects) as org:
        yield org


@pytest.fixture
def settings(settings: Settings, fake: FakeSalesforce) -> Settings:
    return settings.with_overrides({"target": "salesforce", "env": fake.env("session_id")})


@pytest.fixture
def order_group(admin: Any, group_factory: Any) -> Any:
    """Make an XTND group whose OrderPicked events go through ``sf-orders``."""

    def make(**overrides: Any) -> dict[str, Any]:
        admin.put("/mappings/sf-orders", ORDERS)
        created: dict[str, Any] = group_factory(
            connector="xtnd", function="backend", events=["OrderPicked"], **overrides
        )
        admin.post(
            f"/webhooks/{created['template_webhook_id']}/clone",
            {"label": "Picked", "events": ["OrderPicked"], "mapping": "sf-orders"},
        )
        return created

    return make


@pytest.fixture
def group(order_group: Any) -> dict[str, Any]:
    created: dict[str, Any] = order_group()
    return created


def delivery(n: int, orders: int, **details: Any) -> bytes:
    return xtnd_delivery(
        str(n),
        [{"OrderNumber": f"O-{n}-{i}", "Warehouse": "ADR-1", **details} for i in range(orders)],
    )


def statuses(admin: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    cursor = None
    while True:
        page = admin.get("/events?limit=500" + (f"&cursor={cursor}" if cursor else "")).get_json()
        for event in page["items"]:
            counts[event["status"]] = counts.get(event["status"], 0) + 1
        cursor = page["next_cursor"]
        if cursor is None:
            return counts


def outcomes(admin: Any, event_id: str) -> list[tuple[str, str]]:
    """An event's history: each upsert's object and outcome."""
    history = admin.get(f"/events/{event_id}").get_json()["history"]
    return [(row["object"], row["outcome"]) for row in history]


def test_a_burst_of_1000_events_costs_at_most_6_api_calls(
    group: dict[str, Any], deliver: Any, worker: Any, gw: Any, admin: Any, fake: FakeSalesforce
) -> None:
    for n in range(10):
        deliver(group, delivery(n, 100))

    worker.drain()

    assert statuses(admin) == {"delivered": 1000}
    assert len(fake.records["Order__c"]) == 1000
    target = gw.targets.remote("salesforce")
    assert target.api_calls <= 6
    assert sum(fake.calls.values()) <= 6


def test_children_are_linked_to_their_parents_by_external_id(
    group: dict[str, Any], deliver: Any, worker: Any, fake: FakeSalesforce
) -> None:
    rows = [{"Position": 10, "ProductNumber": "P-1"}, {"Position": 20, "ProductNumber": "P-2"}]
    deliver(group, delivery(1, 1, Rows=rows))

    worker.drain()

    (order,) = fake.find("Order__c", "Order_Number__c", "O-1-0")
    lines = fake.records["Order_Line__c"]
    assert sorted(line["Line_Key__c"] for line in lines) == ["O-1-0-10", "O-1-0-20"]
    assert {line["Order__c"] for line in lines} == {order["Id"]}


def test_a_record_salesforce_rejects_fails_only_its_event_with_the_message(
    group: dict[str, Any], deliver: Any, worker: Any, admin: Any
) -> None:
    deliver(group, delivery(1, 3))
    deliver(group, delivery(2, 1, Colour="red"))  # mapped nowhere, fine
    bad = ORDERS | {
        "upserts": [
            ORDERS["upserts"][0]
            | {
                "fields": {"Status__c": "event.type", "No_Such_Field__c": "payload.Details.Colour"},
                "when": "payload.Details.Colour != null",
            },
            ORDERS["upserts"][0] | {"when": "payload.Details.Colour == null"},
        ]
    }
    bad["upserts"][1] = bad["upserts"][1] | {"key": "plain"}
    admin.put("/mappings/sf-orders", bad)

    worker.drain()

    assert statuses(admin) == {"delivered": 3, "failed": 1}
    failed = admin.get("/events?status=failed").get_json()["items"][0]
    assert "INVALID_FIELD" in failed["last_error"]
    assert "No_Such_Field__c" in failed["last_error"]


def test_an_outage_after_the_first_call_retries_only_the_events_it_stopped(
    group: dict[str, Any], deliver: Any, worker: Any, admin: Any, fake: FakeSalesforce
) -> None:
    deliver(group, delivery(1, 1))
    deliver(group, delivery(2, 1, Rows=[{"Position": 10, "ProductNumber": "P-1"}]))
    fake.fail_next(ANSWERED, UNAVAILABLE)  # the orders go through, the line's call does not

    worker.run_once()

    assert statuses(admin) == {"delivered": 1, "pending": 1}
    assert sorted(
        outcomes(admin, event["id"]) for event in admin.get("/events").get_json()["items"]
    ) == [
        [("Order__c", "created"), ("Order_Line__c", "retry")],
        [("Order__c", "created"), ("Order_Line__c", "skipped")],  # it has no lines
    ]

    worker.drain()

    assert statuses(admin) == {"delivered": 2}
    assert len(fake.records["Order_Line__c"]) == 1


def test_a_retry_does_not_send_again_what_an_earlier_attempt_applied(
    group: dict[str, Any], deliver: Any, worker: Any, admin: Any, fake: FakeSalesforce
) -> None:
    deliver(group, delivery(1, 1, Rows=[{"Position": 10, "ProductNumber": "P-1"}]))
    fake.fail_next(ANSWERED, UNAVAILABLE)  # the order goes through, its line's call does not

    worker.drain()

    (event,) = admin.get("/events").get_json()["items"]
    history = admin.get(f"/events/{event['id']}").get_json()["history"]
    assert event["status"] == "delivered"
    assert [(row["attempt"], row["object"], row["outcome"], row["message"]) for row in history] == [
        (1, "Order__c", "created", None),
        (1, "Order_Line__c", "retry", "Salesforce answered HTTP 503"),
        (2, "Order__c", "skipped", "applied by attempt 1 (created); not sent again"),
        (2, "Order_Line__c", "created", None),
    ]
    assert fake.calls == Counter({"sobject_upsert": 3})  # the order, the line twice


def test_lines_of_an_order_the_org_refused_are_not_sent_and_go_again_with_it(
    group: dict[str, Any], deliver: Any, worker: Any, admin: Any, fake: FakeSalesforce
) -> None:
    order_id = fake.add_record("Order__c", Order_Number__c="O-1-0", Status__c="Old")
    fake.lock("Order__c", "O-1-0")  # another transaction holds it: refused, to be retried
    deliver(group, delivery(1, 1, Rows=[{"Position": 10, "ProductNumber": "P-1"}]))

    worker.run_once()

    (event,) = admin.get("/events").get_json()["items"]
    assert event["status"] == "pending"
    history = admin.get(f"/events/{event['id']}").get_json()["history"]
    line = history[1]
    assert (line["object"], line["outcome"]) == ("Order_Line__c", "parent_failed")
    assert line["message"].startswith("not sent: its parent Order__c 'O-1-0' was not applied")
    assert fake.records["Order_Line__c"] == []  # not linked to the order's old version

    fake.lock("Order__c", "O-1-0", locked=False)
    worker.drain()

    assert outcomes(admin, event["id"])[2:] == [
        ("Order__c", "updated"),
        ("Order_Line__c", "created"),
    ]
    (order_line,) = fake.records["Order_Line__c"]
    assert order_line["Order__c"] == order_id


@contextlib.contextmanager
def processing_slowly(
    worker: Worker, batch: list[Any], fake: FakeSalesforce, seconds: float
) -> Iterator[None]:
    """``worker`` processes ``batch`` in a thread whose first call to the org takes ``seconds``;
    the block runs once that call has begun, and the thread is joined after it."""
    fake.fail_next(slow(seconds))
    thread = threading.Thread(target=worker.process, args=(batch,))
    thread.start()
    while fake.api_used == 0:
        time.sleep(0.01)
    yield
    thread.join()


def test_an_older_event_never_overwrites_a_newer_one_sent_by_another_worker(
    order_group: Any,
    deliver: Any,
    admin: Any,
    gw: Gateway,
    settings: Settings,
    fake: FakeSalesforce,
) -> None:
    group = order_group()
    guarded = ORDERS["upserts"][0] | {"order_by": "payload.Details.Version"}
    admin.put("/mappings/sf-orders", ORDERS | {"upserts": [guarded]})
    older, newer = Worker(Gateway(settings), "older"), Worker(gw, "newer")
    deliver(group, xtnd_delivery("1", [{"OrderNumber": "O-1", "Warehouse": "OLD", "Version": 1}]))
    older_batch = older.claim()
    deliver(group, xtnd_delivery("2", [{"OrderNumber": "O-1", "Warehouse": "NEW", "Version": 2}]))
    newer_batch = newer.claim()
    # the older event's call reaches Salesforce last, unless it waits
    with processing_slowly(older, older_batch, fake, 0.5):
        newer.process(newer_batch)
    older.gw.close()

    (order,) = fake.find("Order__c", "Order_Number__c", "O-1")
    assert order["Warehouse__c"] == "NEW"


#: What becomes of an event whose lease runs out during its worker's call, by backend: on
#: PostgreSQL the worker holds its events to the commit; on SQLite another worker takes the
#: event over and sends it again, and the late worker's results are dropped.
LEASE_RUN_OUT = {
    True: ([(1, "pending"), (2, "delivered")], 2),
    False: ([(1, "delivered")], 1),
}


def test_a_lease_that_runs_out_during_a_slow_call_ends_in_one_coherent_history(
    group: dict[str, Any],
    deliver: Any,
    admin: Any,
    gw: Gateway,
    settings: Settings,
    fake: FakeSalesforce,
) -> None:
    slow_worker = Worker(Gateway(settings.with_overrides({"claim_timeout_s": 0.2})), "slow")
    other = Worker(gw, "other")
    deliver(group, delivery(1, 1))
    batch = slow_worker.claim()

    with processing_slowly(slow_worker, batch, fake, 0.6):
        time.sleep(0.3)  # the lease has run out; the call goes on
        other.drain()
    other.drain()
    slow_worker.gw.close()

    history, upserts = LEASE_RUN_OUT[gw.db.is_sqlite]
    (event,) = admin.get("/events").get_json()["items"]
    detail = admin.get(f"/events/{event['id']}").get_json()
    assert sorted({(h["attempt"], h["status"]) for h in detail["history"]}) == history
    assert detail["status"] == "delivered"
    assert fake.calls["sobject_upsert"] + fake.calls["collection_upsert"] == upserts


def test_over_the_api_limit_events_wait_and_the_org_is_not_hammered(
    group: dict[str, Any], deliver: Any, worker: Any, admin: Any, fake: FakeSalesforce, gw: Any
) -> None:
    deliver(group, delivery(1, 5))
    fake.fail_next(REQUEST_LIMIT_EXCEEDED)

    worker.run_once()
    calls_after_limit = sum(fake.calls.values())
    admin.post("/events/replay", {"status": "pending"})
    worker.run_once()

    assert statuses(admin) == {"pending": 5}
    assert "limit reached" in admin.get("/events").get_json()["items"][0]["last_error"]
    assert sum(fake.calls.values()) == calls_after_limit  # paused: no further call


def test_over_the_api_limit_events_wait_for_the_pause_without_spending_attempts(
    group: dict[str, Any], deliver: Any, worker: Any, admin: Any, fake: FakeSalesforce
) -> None:
    deliver(group, delivery(1, 2))
    fake.fail_next(REQUEST_LIMIT_EXCEEDED)

    worker.run_once()

    assert worker.run_once() == 0  # nothing is due before the pause ends
    for event in admin.get("/events").get_json()["items"]:
        waited = datetime.fromisoformat(event["next_attempt_at"]) - datetime.now(UTC)
        assert (event["status"], event["attempts"]) == ("pending", 1)
        assert waited > timedelta(seconds=290)


def test_api_usage_is_shown_when_the_org_refused_the_batch_over_its_limit(
    group: dict[str, Any], deliver: Any, worker: Any, admin: Any, fake: FakeSalesforce
) -> None:
    deliver(group, delivery(1, 2))
    fake.api_used = fake.api_limit - 1
    fake.fail_next(REQUEST_LIMIT_EXCEEDED)

    worker.run_once()

    targets = admin.get("/targets").get_json()["items"]
    usage = next(t for t in targets if t["name"] == "salesforce")["api_usage"]
    assert (usage["used"], usage["limit"]) == (15000, 15000)


def test_api_usage_is_shown_in_metrics_and_the_admin_api(
    group: dict[str, Any], deliver: Any, worker: Any, admin: Any, client: Any
) -> None:
    deliver(group, delivery(1, 2))

    worker.drain()

    targets = admin.get("/targets").get_json()["items"]
    usage = next(t for t in targets if t["name"] == "salesforce")["api_usage"]
    assert usage["limit"] == 15000
    assert usage["used"] >= 1
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'gateway_target_api_usage{kind="limit",target="salesforce"} 15000.0' in metrics


def test_a_group_can_keep_the_local_store_while_the_default_is_salesforce(
    admin: Any, order_group: Any, deliver: Any, worker: Any, fake: FakeSalesforce
) -> None:
    deliver(order_group(target="local"), delivery(7, 1))

    worker.drain()

    assert admin.get("/records/Order__c/O-7-0").status_code == 200
    assert fake.records["Order__c"] == []


# --- credentials stored through the admin API --------------------------------------------


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"SALESFORCE_PASSWORD_TYPO": "x"}, "$"),  # not a variable the target reads
        ({"SALESFORCE_USERNAME": ""}, "SALESFORCE_USERNAME"),  # empty value
        ({}, "$"),  # nothing to store
    ],
)
def test_invalid_credentials_are_refused(admin: Any, body: dict[str, str], path: str) -> None:
    response = admin.put("/targets/salesforce/credentials", body)

    assert response.status_code == 422
    assert path in [d["path"] for d in response.get_json()["error"]["details"]]


def test_credentials_are_kept_for_remote_targets_only(admin: Any) -> None:
    response = admin.put("/targets/local/credentials", {"SALESFORCE_USERNAME": "u@example.com"})

    assert response.status_code == 422


def test_stored_credentials_show_when_they_changed_in_utc(admin: Any) -> None:
    stored = admin.put("/targets/salesforce:eu/credentials", {"SALESFORCE_USERNAME": "u@e.com"})
    shown = admin.get("/targets/salesforce:eu/credentials").get_json()

    assert shown["updated_at"] == stored.get_json()["updated_at"]
    assert shown["updated_at"].endswith("Z")


def test_stored_credentials_are_encrypted_write_only_and_used_by_the_worker(
    admin: Any,
    order_group: Any,
    deliver: Any,
    worker: Any,
    gw: Any,
    fake: FakeSalesforce,
) -> None:
    fake.expire_sessions()  # the environment's session no longer works: only stored ones do
    session_id = fake.issue_token()
    credentials = {
        "SALESFORCE_SESSION_ID": session_id,
        "SALESFORCE_INSTANCE_URL": fake.origin,
        "SALESFORCE_CA_BUNDLE": fake.ca_path,
    }
    stored = admin.put("/targets/salesforce:eu/credentials", credentials)
    deliver(order_group(target="salesforce:eu"), delivery(3, 2))

    worker.drain()

    assert stored.status_code == 200
    assert session_id not in stored.get_data(as_text=True)
    shown = admin.get("/targets/salesforce:eu/credentials").get_json()
    assert set(shown["variables"]) == set(credentials)
    assert session_id not in json.dumps(shown)
    with gw.db.read_session() as session:
        ciphertext = session.get(TargetCredentials, "salesforce:eu").ciphertext
    assert session_id not in ciphertext
    assert statuses(admin) == {"delivered": 2}
    assert len(fake.records["Order__c"]) == 2
    assert admin.delete("/targets/salesforce:eu/credentials").status_code == 204
    assert admin.get("/targets/salesforce:eu/credentials").status_code == 404


def test_changed_credentials_are_used_by_the_next_batch_without_a_restart(
    admin: Any, group: dict[str, Any], deliver: Any, worker: Any, fake: FakeSalesforce
) -> None:
    deliver(group, delivery(1, 1))
    worker.drain()  # logged in with the environment's session id
    fake.expire_sessions()
    renewed = {"SALESFORCE_SESSION_ID": fake.issue_token(), "SALESFORCE_INSTANCE_URL": fake.origin}
    admin.put("/targets/salesforce/credentials", renewed)
    deliver(group, delivery(2, 1))

    worker.drain()

    assert statuses(admin) == {"delivered": 2}

"""The senders' own documented examples, fed as printed through the receive endpoint.

Bodies, secrets and signatures below are copied from each sender's webhook documentation;
signatures are computed here as those documents describe, never by the gateway's own signer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.models import Delivery, Event

# --- XTND / Extend Commerce ----------------------------------------------------------------

#: The signing example: ClientSecret, Body (16 bytes) and the ms-signature header it gives.
XTND_VECTOR_SECRET = "secret123"
XTND_VECTOR_BODY = b"{'test':'test2'}"
XTND_VECTOR_SIGNATURE = "sha256=25FB6994568A75CD233E04BA1C653AF1BF476041CC543AF04F82CAAC482C201A"

#: The ProductCreated example, byte for byte as printed.
XTND_PRODUCT_CREATED = b"""{
  "Id": "13f078bcbe2243dc997655ed2cddbdf7",
  "Attempt": 1,
  "Properties": {
    "NotificationId": "90c6340b-1f5c-49e0-9cee-45df5dd145c2"
  },
  "Notifications": [
    {
      "Action": "ProductCreated",
      "Details": {
        "ProductNumber": "Financial Invoice"
      }
    }
  ]
}"""

#: The PurchasePartiallyDelivered example as printed: a stray brace closes the body early.
XTND_PURCHASE_PARTIALLY_DELIVERED = b"""{
  "Id": "6e249eebb818463086ae0dda6eeba7b2",
  "Attempt": 1,
  "Properties": {
    "NotificationId": "3b3fd4a6-36d5-46fe-8a3f-e73532529db3" }
},
"Notifications": [
  {
    "Action": "PurchasePartiallyDelivered",
    "Details": {
      "OrderNumber": "RP-101", "Warehouse": "GreenWarehouse" }
    }
  ]
}"""

#: "Example - complete list": each action with its sample Json, verbatim.
XTND_COMPLETE_LIST = [
    ("AvailableBalanceChanged", '{"Details":{"ProductNumber":"8684","Warehouse":"YX","AvailableBalance":22}}'),  # noqa: E501
    ("BalanceChanged", '{"Details":{"ProductNumber":"7495","Warehouse":"YX","Balance":43,"EventName":"ItemChangeST","EventType":"BalanceAdjustment"}}'),  # noqa: E501
    ("CustomerChanged", '{"Details":{"CustomerNumber":"603271"}}'),
    ("CustomerCreated", '{"Details":{"CustomerNumber":"817472"}}'),
    ("CustomerInvoiceChanged", '{"Details":{"InvoiceNumber":"1000001"}}'),
    ("CustomerInvoiceCreated", '{"Details":{"InvoiceNumber":"1000002"}}'),
    ("OfferChanged", '{"Details":{"OfferNumber":"OFF-217530"}}'),
    ("OfferCreated", '{"Details":{"OfferNumber":"OFF-212423"}}'),
    ("OrderCancelled", '{"Details":{"OrderNumber":"3339977","OrderType":"NormalOrder"}}'),
    ("OrderCreated", '{"Details":{"OrderNumber":"3339887","OrderType":"NormalOrder"}}'),
    ("OrderDeliveryDataChanged", '{"Details":{"OrderNumber":"OC-2319","OrderType":"NormalOrder"}}'),
    ("OrderPicked", '{"Details":{"OrderNumber":"333841","OrderType":"NormalOrder"}}'),
    ("OrderReserved", '{"Details":{"OrderNumber":"339887","OrderType":"NormalOrder"}}'),
    ("PickingStarted", '{"Details":{"Order":{"OrderNumber":"802624","Warehouse":"ADR-1","Row":{"Position":10,"SubPosition":0,"ProductNumber":"4340-001","Unit":{"Quantity":1}}}}}'),  # noqa: E501
    ("PriceListWebHook", '{"Details":{"PriceListName":"B2B-EUR"}}'),
    ("ProductChanged", '{"Details":{"ProductNumber":"172488"}}'),
    ("ProductCreated", '{"Details":{"ProductNumber":"265A9AA"}}'),
    ("PurchaseCancelled", '{"Details":{"OrderNumber":"RP-70002034","Warehouse":"ADR-1"}}'),
    ("PurchaseCreated", '{"Details":{"OrderNumber":"RP-70002830","Warehouse":"ADR-1"}}'),
    ("PurchaseDelivered", '{"Details":{"OrderNumber":"50002245","Warehouse":"B-1"}}'),
    ("PurchasePartiallyDelivered", '{"Details":{"OrderNumber":"95510","Warehouse":"BA"}}'),
]  # fmt: skip

# --- Xemelgo -----------------------------------------------------------------------------

#: The registerWebhook example's secret (it must be longer than 24 characters).
XEMELGO_SECRET = "your-secret-key-must-be-longer-than-24-characters"
#: The request body example, its "// Event-specific data" comment left out to make it JSON.
XEMELGO_EXAMPLE = {
    "id": "c1314cc5-60f7-ddba-7be3-900030a8ee05",
    "eventTimestamp": 1765572297000,
    "topic": "inventory.cycle_count",
    "data": {},
}

# --- every event name the documents list ---------------------------------------------------

XEMELGO_TOPICS = (
    "asset.bulk_update, asset.created, asset.cycle_count, asset.cycle_count.counts, asset.moved,"
    " inventory.audit, inventory.audit.counts, inventory.bulk_update, inventory.consumed,"
    " inventory.created, inventory.cycle_count, inventory.cycle_count.counts, inventory.moved,"
    " inventory.returned, package.created, package.moved, work_order.created, work_order.moved"
).split(", ")
XILNEX_EVENTS = [
    "Create Sales",
    "Confirm Sales",
    "Confirm Sales v2",
    "Complete Sales",
    "Complete Sales v2",
    "Cancel Sales",
    "Update Sales",
    "Cancel Sales Order",
    "Confirm Sales Order",
    "Complete Sales Order",
    "Post Quotation to Sales",  # the list goes on past what is public: names are open
]


def _mac(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode(), body, hashlib.sha256).digest()


def _post(client: Any, group: dict[str, Any], body: bytes, headers: dict[str, str]) -> Any:
    sent = {"Content-Type": "application/json", **headers}
    return client.post(f"/hooks/{group['token']}", data=body, headers=sent)


def _events(admin: Any, group: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = admin.get(f"/events?group_id={group['id']}").get_json()["items"]
    return items


def _stored(gw: Any) -> tuple[int, int]:
    """Accepted deliveries and events: a refused delivery leaves a row of its own."""
    with gw.db.read_session() as session:
        count = [
            int(session.scalar(query) or 0)
            for query in (
                select(func.count()).where(Delivery.outcome == "accepted"),
                select(func.count()).select_from(Event),
            )
        ]
    return count[0], count[1]


def _xtnd_group(group_factory: Any, events: list[str], secret: str) -> dict[str, Any]:
    return group_factory(connector="xtnd", function="backend", events=events, secret=secret)


@pytest.mark.parametrize(
    ("body", "signature", "status", "code"),
    [
        # the vector verifies; its body is not JSON, so it is then refused as unparseable
        (XTND_VECTOR_BODY, XTND_VECTOR_SIGNATURE, 400, "invalid_payload"),
        # one byte of the body changed
        (b"{'test':'test3'}", XTND_VECTOR_SIGNATURE, 401, "signature_mismatch"),
        # one digit of the signature changed
        (XTND_VECTOR_BODY, XTND_VECTOR_SIGNATURE[:-1] + "B", 401, "signature_mismatch"),
    ],
    ids=["as published", "body changed", "signature changed"],
)
def test_xtnd_signature_vector(
    group_factory: Any,
    client: Any,
    gw: Any,
    body: bytes,
    signature: str,
    status: int,
    code: str,
) -> None:
    group = _xtnd_group(group_factory, ["ProductCreated"], XTND_VECTOR_SECRET)

    response = _post(client, group, body, {"ms-signature": signature})

    assert (response.status_code, response.get_json()["error"]["code"]) == (status, code)
    assert _stored(gw) == (0, 0)


def test_xtnd_product_created_example_is_one_event_keyed_by_its_notification(
    group_factory: Any, client: Any, admin: Any
) -> None:
    secret = "xtnd-test-secret-0123456789"
    group = _xtnd_group(group_factory, ["ProductCreated"], secret)
    signature = "sha256=" + _mac(secret, XTND_PRODUCT_CREATED).hex().upper()

    answer = _post(client, group, XTND_PRODUCT_CREATED, {"ms-signature": signature}).get_json()

    assert (answer["accepted"], answer["duplicates"], answer["ignored"]) == (1, 0, 0)
    (event,) = _events(admin, group)
    assert event["type"] == "ProductCreated"
    assert event["dedupe_key"] == "id:90c6340b-1f5c-49e0-9cee-45df5dd145c2#0"
    assert admin.get(f"/events/{event['id']}").get_json()["payload"] == {
        "Action": "ProductCreated",
        "Details": {"ProductNumber": "Financial Invoice"},
    }


def test_xtnd_product_created_example_changed_by_one_byte_is_refused(
    group_factory: Any, client: Any, gw: Any
) -> None:
    secret = "xtnd-test-secret-0123456789"
    group = _xtnd_group(group_factory, ["ProductCreated"], secret)
    signature = "sha256=" + _mac(secret, XTND_PRODUCT_CREATED).hex().upper()
    changed = XTND_PRODUCT_CREATED.replace(b"Financial", b"Finanzial")

    response = _post(client, group, changed, {"ms-signature": signature})

    assert response.status_code == 401
    assert _stored(gw) == (0, 0)


def test_xtnd_purchase_partially_delivered_example_is_refused_as_printed_and_taken_repaired(
    group_factory: Any, client: Any, admin: Any, gw: Any
) -> None:
    secret = "xtnd-test-secret-0123456789"
    group = _xtnd_group(group_factory, ["PurchasePartiallyDelivered"], secret)
    repaired = XTND_PURCHASE_PARTIALLY_DELIVERED.replace(b'db3" }\n},', b'db3" },', 1)

    def send(body: bytes) -> Any:
        signature = "sha256=" + _mac(secret, body).hex().upper()
        return _post(client, group, body, {"ms-signature": signature})

    as_printed = send(XTND_PURCHASE_PARTIALLY_DELIVERED)
    assert as_printed.status_code == 400
    assert as_printed.get_json()["error"]["code"] == "invalid_payload"
    assert _stored(gw) == (0, 0)
    assert send(repaired).get_json()["accepted"] == 1
    (event,) = _events(admin, group)
    assert event["type"] == "PurchasePartiallyDelivered"
    assert event["dedupe_key"] == "id:3b3fd4a6-36d5-46fe-8a3f-e73532529db3#0"


def test_xtnd_complete_list_every_action_registered_and_split_from_one_delivery(
    group_factory: Any, client: Any, admin: Any
) -> None:
    secret = "xtnd-test-secret-0123456789"
    actions = [action for action, _ in XTND_COMPLETE_LIST]
    group = _xtnd_group(group_factory, actions, secret)
    notifications = [{"Action": a, **json.loads(sample)} for a, sample in XTND_COMPLETE_LIST]
    body = json.dumps(
        {
            "Id": "d0000000000000000000000000000001",
            "Attempt": 1,
            "Properties": {"NotificationId": "n-complete-list"},
            "Notifications": notifications,
        }
    ).encode()
    signature = "sha256=" + _mac(secret, body).hex().upper()

    answer = _post(client, group, body, {"ms-signature": signature}).get_json()

    assert group["events"] == actions
    assert (answer["accepted"], answer["ignored"]) == (len(actions), 0)
    keys = {event["dedupe_key"]: event["type"] for event in _events(admin, group)}
    assert keys == {f"id:n-complete-list#{n}": action for n, action in enumerate(actions)}


def _xemelgo_body(**changes: Any) -> bytes:
    """The example as ``JSON.stringify`` writes it: compact, keys in their order."""
    return json.dumps({**XEMELGO_EXAMPLE, **changes}, separators=(",", ":")).encode()


def _xemelgo_signature(body: bytes) -> dict[str, str]:
    return {"xemelgo-signature": "sha256=" + _mac(XEMELGO_SECRET, body).hex()}


def test_xemelgo_example_is_one_event_keyed_by_its_content(
    group_factory: Any, client: Any, admin: Any
) -> None:
    group = group_factory(secret=XEMELGO_SECRET, events=["inventory.cycle_count"])
    body = _xemelgo_body()

    answer = _post(client, group, body, _xemelgo_signature(body)).get_json()

    assert (answer["accepted"], answer["duplicates"], answer["ignored"]) == (1, 0, 0)
    (event,) = _events(admin, group)
    hashed = json.dumps(
        ["inventory.cycle_count", 1765572297000, {}], sort_keys=True, separators=(",", ":")
    )
    assert event["type"] == "inventory.cycle_count"
    assert event["dedupe_key"] == "sha256:" + hashlib.sha256(hashed.encode()).hexdigest()
    detail = admin.get(f"/events/{event['id']}").get_json()
    assert detail["occurred_at"] == "2025-12-12T20:44:57Z"


def test_xemelgo_example_retried_under_a_new_id_is_a_duplicate(
    group_factory: Any, client: Any
) -> None:
    group = group_factory(secret=XEMELGO_SECRET, events=["inventory.cycle_count"])
    first, retry = _xemelgo_body(), _xemelgo_body(id="c1314cc5-60f7-ddba-7be3-900030a8ee06")

    _post(client, group, first, _xemelgo_signature(first))
    answer = _post(client, group, retry, _xemelgo_signature(retry)).get_json()

    assert (answer["accepted"], answer["duplicates"]) == (0, 1)


def test_xemelgo_example_changed_by_one_byte_is_refused(
    group_factory: Any, client: Any, gw: Any
) -> None:
    group = group_factory(secret=XEMELGO_SECRET, events=["inventory.cycle_count"])
    body = _xemelgo_body()

    response = _post(client, group, body.replace(b"7000", b"7001"), _xemelgo_signature(body))

    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "signature_mismatch"
    assert _stored(gw) == (0, 0)


# --- Xilnex Event Hub ------------------------------------------------------------------------

#: A sale as third-party code has seen Xilnex send it (the shape is not documented).
XILNEX_SALE = json.dumps(
    {
        "EventName": "Xilnex.Sales.Complete",
        "EventTime": "2026-05-05T14:32:08+08:00",
        "Data": {"sale": {"salesNo": "EXM01-000123"}},
    }
).encode()
XILNEX_SECRET = "xilnex-test-secret-0123456789"


@pytest.mark.parametrize(
    ("signature", "changed_body_status"),
    [
        (_mac(XILNEX_SECRET, XILNEX_SALE).hex(), 401),
        (_mac(XILNEX_SECRET, XILNEX_SALE).hex().upper(), 401),
        (base64.b64encode(_mac(XILNEX_SECRET, XILNEX_SALE)).decode(), 401),
        (XILNEX_SECRET, 200),  # the header carrying the shared secret, which covers no body
    ],
    ids=["lower hex", "upper hex", "base64", "the secret itself"],
)
def test_xilnex_signature_in_each_accepted_form(
    group_factory: Any, client: Any, admin: Any, signature: str, changed_body_status: int
) -> None:
    group = group_factory(
        connector="xilnex",
        function="event-hub",
        events=["Xilnex.Sales.Complete"],
        secret=XILNEX_SECRET,
    )
    changed = XILNEX_SALE.replace(b"123", b"124")

    answer = _post(client, group, XILNEX_SALE, {"Xilnex-Webhook-Signature": signature}).get_json()

    assert answer["accepted"] == 1
    assert [e["type"] for e in _events(admin, group)] == ["Xilnex.Sales.Complete"]
    response = _post(client, group, changed, {"xilnex-webhook-signature": signature})
    assert response.status_code == changed_body_status


@pytest.mark.parametrize(
    ("connector", "function", "events", "body"),
    [
        # Xilnex: "enter any placeholder value (e.g., -) in the Secret field"
        ("xilnex", "event-hub", ["Complete Sales"], {"EventName": "Complete Sales"}),
        # XTND: "It is optional to use the signature for verification"
        (
            "xtnd",
            "backend",
            ["ProductCreated"],
            json.loads(XTND_PRODUCT_CREATED),
        ),
        # generic: "an API key can be utilized", so a sender may have none
        ("generic", "webhooks", ["order.created"], {"event_type": "order.created", "data": {}}),
    ],
)
def test_a_sender_that_does_not_sign_is_taken_with_the_secret_dash(
    group_factory: Any,
    client: Any,
    connector: str,
    function: str,
    events: list[str],
    body: dict[str, Any],
) -> None:
    group = group_factory(connector=connector, function=function, events=events, secret="-")

    response = _post(client, group, json.dumps(body).encode(), {})

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["accepted"] == 1


@pytest.mark.parametrize(
    ("connector", "function", "events"),
    [
        ("xemelgo", "webhooks", XEMELGO_TOPICS),
        ("xtnd", "backend", [action for action, _ in XTND_COMPLETE_LIST]),
        ("xilnex", "event-hub", XILNEX_EVENTS),
    ],
)
def test_every_event_the_documents_name_is_registrable(
    admin: Any, connector: str, function: str, events: list[str]
) -> None:
    response = admin.post(
        "/groups",
        {"name": "All events", "connector": connector, "function": function, "events": events},
    )

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["events"] == events


BALANCE_MAPPING = {
    "name": "balances",
    "upserts": [
        {
            "key": "balance",
            "object": "Balance__c",
            "external_id_field": "Key__c",
            "external_id": "concat(payload.Details.ProductNumber, '@', payload.Details.Warehouse)",
            "fields": {"Available__c": "payload.Details.AvailableBalance"},
        }
    ],
}


def test_xtnd_warehouse_filter_is_a_record_filter_on_the_notifications_details(
    group_factory: Any, client: Any, admin: Any, worker: Any
) -> None:
    secret = "xtnd-test-secret-0123456789"
    group = _xtnd_group(group_factory, ["AvailableBalanceChanged"], secret)
    assert admin.put("/mappings/balances", BALANCE_MAPPING).status_code == 201
    admin.post(
        f"/webhooks/{group['template_webhook_id']}/clone",
        {
            "label": "Warehouse YX balances",
            "events": ["AvailableBalanceChanged"],
            "filter": "Details.Warehouse == 'YX'",
            "mapping": "balances",
        },
    )
    sample = json.loads(XTND_COMPLETE_LIST[0][1])  # AvailableBalanceChanged in warehouse YX
    elsewhere = {"Details": {**sample["Details"], "Warehouse": "BA"}}
    body = json.dumps(
        {
            "Properties": {"NotificationId": "n-warehouses"},
            "Notifications": [
                {"Action": "AvailableBalanceChanged", **details} for details in (sample, elsewhere)
            ],
        }
    ).encode()
    _post(client, group, body, {"ms-signature": "sha256=" + _mac(secret, body).hex().upper()})

    worker.drain()

    statuses = {e["dedupe_key"]: e["status"] for e in _events(admin, group)}
    assert statuses == {"id:n-warehouses#0": "delivered", "id:n-warehouses#1": "unrouted"}
    assert admin.get("/records/Balance__c/8684@YX").get_json()["fields"]["Available__c"] == 22
    assert admin.get("/records/Balance__c/8684@BA").status_code == 404

"""The mapping files in ``mappings/``: each one end to end, from a signed sample to local records.

Each case loads the files as ``gateway mappings load`` does, clones the group's template into a
webhook record with the mapping, delivers the connector's shipped sample signed as its sender
signs it, runs the worker and then reads back exactly the records the mapping promises.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from sqlalchemy import select

from gateway.config import Settings
from gateway.connectors import sample_delivery, shipped_profiles
from gateway.mapping import validate_document
from gateway.mapping.files import load_mapping_files
from gateway.mapping_store import API
from gateway.models import Record
from tests.acceptance.conftest import process_env

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
SHIPPED = sorted(p.name for p in MAPPINGS.iterdir() if p.suffix in (".yaml", ".yml", ".json"))

#: Stands for sf_datetime() of the received_at of the event that last wrote the record.
RECEIVED = "<received_at of the source event>"
#: Stands for the id of the delivery's (only) event.
EVENT_ID = "<id of the event>"

SECRETS = {
    # connector: a secret of the shape its provider uses
    "xemelgo": "xemelgo-test-secret-0123456789abcdef",
    "xilnex": "xilnex-test-secret-0123456789",
    "xtnd": "xtnd-test-secret-0123456789",
    "generic": "generic-test-api-key-0123456789",
}

Records = dict[tuple[str, str], dict[str, Any]]


# --- helpers -----------------------------------------------------------------------------


def load_shipped(gw: Any) -> dict[str, int]:
    """Load ``mappings/`` through the mapping store, as the CLI does; name -> version."""
    return {
        document["name"]: gw.mappings.put(document["name"], document, source=API)[0].version
        for _, document in load_mapping_files(MAPPINGS)
    }


def wire(
    admin: Any, group_factory: Any, connector: str, mapping: str, events: list[str]
) -> dict[str, Any]:
    """A group of ``connector`` taking ``events``, and one webhook record mapping them all."""
    function = shipped_profiles()[connector].document["functions"][0]["name"]
    group = group_factory(
        name=f"Test {connector}",
        connector=connector,
        function=function,
        events=events,
        secret=SECRETS[connector],
    )
    response = admin.post(
        f"/webhooks/{group['template_webhook_id']}/clone",
        {"label": mapping, "events": events, "mapping": mapping},
    )
    assert response.status_code == 201, response.get_json()
    return group


def send(deliver: Any, group: dict[str, Any], event_type: str, body: bytes | None = None) -> str:
    """Deliver the sample of ``event_type`` (or ``body`` with its headers), signed; delivery id."""
    sample, headers = sample_delivery(shipped_profiles()[group["connector"]], event_type)
    response = deliver(group, sample if body is None else body, headers)
    assert response.status_code == 200, response.get_json()
    return str(response.get_json()["delivery_id"])


def sample_json(connector: str, event_type: str) -> dict[str, Any]:
    body, _ = sample_delivery(shipped_profiles()[connector], event_type)
    document: dict[str, Any] = json.loads(body)
    return document


def events_of(admin: Any, delivery_id: str) -> list[dict[str, Any]]:
    """The delivery's events in full (payload and history), in order."""
    items = admin.get("/events?limit=500").get_json()["items"]
    ids = sorted(int(e["id"]) for e in items if e["delivery_id"] == delivery_id)
    return [admin.get(f"/events/{event_id}").get_json() for event_id in ids]


def record(admin: Any, obj: str, external_id: str) -> dict[str, Any] | None:
    response = admin.get(f"/records/{obj}/{quote(external_id, safe='')}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.get_json()
    found: dict[str, Any] = response.get_json()
    return found


def stored_keys(gw: Any) -> set[tuple[str, str]]:
    with gw.db.read_session() as session:
        return {tuple(row) for row in session.execute(select(Record.object, Record.external_id))}


def sf_datetime(iso: str) -> str:
    """A received_at as the mapping writes it: UTC, milliseconds, truncated."""
    moment = datetime.fromisoformat(iso)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def resolve(value: Any, event: dict[str, Any]) -> Any:
    """``value`` with RECEIVED and EVENT_ID replaced by what they stand for in ``event``."""
    if value == RECEIVED:
        return sf_datetime(event["received_at"])
    if value == EVENT_ID:
        return event["id"]
    if isinstance(value, dict):
        return {k: resolve(v, event) for k, v in value.items()}
    return value


# --- the records each shipped sample gives ----------------------------------------------

XILNEX_SALE: Records = {
    ("Account", "C-000042"): {
        "Xilnex_Customer_Id__c": "C-000042",
        "Name": "Alex Example",
        "AccountNumber": "CUST-EXAMPLE-42",
        "Membership_No__c": "MBR-TEST-0042",
        "Email__c": "alex@example.com",
        "Phone": "+60 12-000 0000",
    },
    ("Sales_Order__c", "SL-000000-0001"): {
        "Xilnex_Sale_Id__c": "SL-000000-0001",
        "Name": "EXM01-000123",
        "Sales_No__c": "EXM01-000123",
        "Status__c": "Completed",
        "Sales_Type__c": "Retail",
        "Sales_Date__c": "2026-05-05T06:31:52.000Z",
        "Completed_At__c": "2026-05-05T06:32:08.000Z",
        "Outlet_Code__c": "EXM01",
        "Outlet_Name__c": "Example Mart (Test Outlet)",
        "Cashier_Name__c": "Test Cashier",
        "Customer_Code__c": "CUST-EXAMPLE-42",
        "Customer_Name__c": "Alex Example",
        "Subtotal__c": 131.05,
        "Discount__c": 1.25,
        "Tax__c": 7.87,
        "Rounding__c": -0.02,
        "Grand_Total__c": 138.9,
        "Payment_Methods__c": "Cash, DuitNow QR",
        "Paid_Amount__c": 138.9,
        "Line_Count__c": 3,
        "Remark__c": "Test sale for the webhook gateway samples",
        "Source__c": "Xilnex",
    },
    **{
        ("Sales_Order_Line__c", f"SL-000000-0001-{line}"): {
            "Xilnex_Line_Key__c": f"SL-000000-0001-{line}",
            "Name": f"EXM01-000123 #{line}",
            "Line_No__c": line,
            "Item_Code__c": code,
            "Item_Name__c": name,
            "Quantity__c": quantity,
            "Unit_Price__c": price,
            "Discount__c": discount,
            "Tax__c": tax,
            "Subtotal__c": subtotal,
            "Sales_Order__r": {"Xilnex_Sale_Id__c": "SL-000000-0001"},
        }
        for line, code, name, quantity, price, discount, tax, subtotal in [
            (1, "SKU-TEST-0001", "Example Coffee Beans 250g", 2, 32.9, 0, 3.95, 65.8),
            (2, "SKU-TEST-0002", "Example Paper Filters (100)", 1, 12.5, 1.25, 0.68, 11.25),
            (3, "SKU-TEST-0003", "Example Ceramic Mug", 3, 18, 0, 3.24, 54),
        ]
    },
}

CYCLE_COUNT: Records = {
    ("Cycle_Count__c", "cc-0000-test-0001"): {
        "Xemelgo_Cycle_Count_Id__c": "cc-0000-test-0001",
        "Name": "cc-0000-test-0001",
        "Topic__c": "inventory.cycle_count",
        "Status__c": "completed",
        "Location_Id__c": "loc-test-aisle-04",
        "Location_Name__c": "Test Warehouse / Aisle 04",
        "Location_Type__c": "zone",
        "Started_At__c": "2025-12-12T20:30:00.000Z",
        "Completed_At__c": "2025-12-12T20:44:50.000Z",
        "Counted_By__c": "operator@example.com",
        "Expected__c": 120,
        "Found__c": 117,
        "Missing__c": 3,
        "Unexpected__c": 1,
        "Event_Time__c": "2025-12-12T20:44:57.000Z",
    },
    **{
        ("Cycle_Count_Line__c", f"cc-0000-test-0001/{sku}"): {
            "Xemelgo_Count_Line_Key__c": f"cc-0000-test-0001/{sku}",
            "Name": sku,
            "SKU__c": sku,
            "Description__c": description,
            "Expected__c": expected,
            "Found__c": found,
            "Location_Id__c": "loc-test-aisle-04",
            "Cycle_Count__r": {"Xemelgo_Cycle_Count_Id__c": "cc-0000-test-0001"},
        }
        for sku, description, expected, found in [
            ("SKU-TEST-0001", "Example Widget, blue", 60, 59),
            ("SKU-TEST-0002", "Example Widget, red", 60, 58),
            ("SKU-TEST-0003", "Example Gadget", 0, 1),
        ]
    },
}

INVENTORY_MOVE: Records = {
    ("Item_Location__c", "inv-test-000987"): {
        "Xemelgo_Item_Id__c": "inv-test-000987",
        "Name": "Example Widget, blue",
        "Kind__c": "inventory",
        "Tag_Id__c": "E280116060000000000000A1",
        "SKU__c": "SKU-TEST-0001",
        "Asset_Type__c": None,
        "Quantity__c": 1,
        "Location_Id__c": "loc-test-aisle-04",
        "Location_Name__c": "Test Warehouse / Aisle 04",
        "Previous_Location_Id__c": "loc-test-receiving",
        "Previous_Location_Name__c": "Test Warehouse / Receiving",
        "Moved_At__c": "2025-12-12T21:05:10.000Z",
        "Last_Event_At__c": "2025-12-12T21:05:12.345Z",
    },
    ("Item_Move__c", "inv-test-000987@1765573512345"): {
        "Xemelgo_Move_Key__c": "inv-test-000987@1765573512345",
        "Topic__c": "inventory.moved",
        "From_Location_Id__c": "loc-test-receiving",
        "From_Location_Name__c": "Test Warehouse / Receiving",
        "To_Location_Id__c": "loc-test-aisle-04",
        "To_Location_Name__c": "Test Warehouse / Aisle 04",
        "Detected_By__c": "reader-test-dock-02",
        "Moved_At__c": "2025-12-12T21:05:10.000Z",
        "Item_Location__r": {"Xemelgo_Item_Id__c": "inv-test-000987"},
    },
}

ASSET_MOVE: Records = {
    ("Item_Location__c", "asset-test-0042"): {
        "Xemelgo_Item_Id__c": "asset-test-0042",
        "Name": "Example Forklift 42",
        "Kind__c": "asset",
        "Tag_Id__c": "E280116060000000000000B2",
        "SKU__c": None,
        "Asset_Type__c": "Forklift",
        "Quantity__c": None,
        "Location_Id__c": "loc-test-dock-3",
        "Location_Name__c": "Test Plant / Loading Dock 3",
        "Previous_Location_Id__c": "loc-test-bay-1",
        "Previous_Location_Name__c": "Test Plant / Maintenance Bay 1",
        "Moved_At__c": "2025-12-12T21:19:55.000Z",
        "Last_Event_At__c": "2025-12-12T21:20:00.000Z",
    },
    ("Item_Move__c", "asset-test-0042@1765574400000"): {
        "Xemelgo_Move_Key__c": "asset-test-0042@1765574400000",
        "Topic__c": "asset.moved",
        "From_Location_Id__c": "loc-test-bay-1",
        "From_Location_Name__c": "Test Plant / Maintenance Bay 1",
        "To_Location_Id__c": "loc-test-dock-3",
        "To_Location_Name__c": "Test Plant / Loading Dock 3",
        "Detected_By__c": None,
        "Moved_At__c": "2025-12-12T21:19:55.000Z",
        "Item_Location__r": {"Xemelgo_Item_Id__c": "asset-test-0042"},
    },
}

XTND_ORDER_CREATED: Records = {
    ("Order__c", "3339887"): {
        "XTND_Order_Number__c": "3339887",
        "Status__c": "Created",
        "Order_Type__c": "NormalOrder",
        "Last_Action__c": "OrderCreated",
        "Last_Action_At__c": RECEIVED,
        "Customer_Number__c": "817472",
        "Warehouse__c": "ADR-1",
        "Line_Count__c": 3,
    },
    **{
        ("Order_Line__c", f"3339887-{position}-0"): {
            "XTND_Line_Key__c": f"3339887-{position}-0",
            "Position__c": position,
            "Sub_Position__c": 0,
            "Product_Number__c": product,
            "Quantity__c": quantity,
            "Order__r": {"XTND_Order_Number__c": "3339887"},
        }
        for position, product, quantity in [
            (10, "4340-001", 2),
            (20, "265A9AA", 1),
            (30, "172488", 5),
        ]
    },
}

XTND_ORDERS_PICKED: Records = {
    ("Order__c", number): {
        "XTND_Order_Number__c": number,
        "Status__c": "Picked",
        "Order_Type__c": "NormalOrder",
        "Last_Action__c": "OrderPicked",
        "Last_Action_At__c": RECEIVED,
    }
    for number in ("333841", "333842")
}

XTND_PRODUCT_CREATED: Records = {
    ("Product__c", "265A9AA"): {
        "XTND_Product_Number__c": "265A9AA",
        "Name": "265A9AA",
        "Last_XTND_Action__c": "ProductCreated",
        "Last_XTND_Action_At__c": RECEIVED,
        "Needs_Refresh__c": True,
        "Created_In_XTND_At__c": RECEIVED,
    }
}

XTND_CUSTOMER_CREATED: Records = {
    ("Customer__c", "817472"): {
        "XTND_Customer_Number__c": "817472",
        "Name": "817472",
        "Last_XTND_Action__c": "CustomerCreated",
        "Last_XTND_Action_At__c": RECEIVED,
        "Needs_Refresh__c": True,
        "Created_In_XTND_At__c": RECEIVED,
    }
}

XTND_BALANCE: Records = {
    ("Product__c", "7495"): {"XTND_Product_Number__c": "7495", "Name": "7495"},
    ("Stock_Balance__c", "7495@YX"): {
        "XTND_Balance_Key__c": "7495@YX",
        "Name": "7495 @ YX",
        "Warehouse__c": "YX",
        "Balance__c": 43,
        "Balance_Event__c": "BalanceAdjustment",
        "Balance_Changed_At__c": RECEIVED,
        "Product__r": {"XTND_Product_Number__c": "7495"},
    },
}

XTND_AVAILABLE_BALANCE: Records = {
    ("Product__c", "8684"): {"XTND_Product_Number__c": "8684", "Name": "8684"},
    ("Stock_Balance__c", "8684@YX"): {
        "XTND_Balance_Key__c": "8684@YX",
        "Name": "8684 @ YX",
        "Warehouse__c": "YX",
        "Available_Balance__c": 22,
        "Available_Balance_Changed_At__c": RECEIVED,
        "Product__r": {"XTND_Product_Number__c": "8684"},
    },
}

GENERIC_ORDER: Records = {
    ("Webhook_Event__c", EVENT_ID): {
        "Gateway_Event_Id__c": EVENT_ID,
        "Name": "order.created 2026-03-14T09:26:53.589Z",
        "Event_Type__c": "order.created",
        "Event_Time__c": "2026-03-14T09:26:53.589Z",
        "Tenant__c": "tenant-example",
        "User_Id__c": "user-0042",
        "User_Email__c": "sam.sample@example.com",
        "Source__c": "admin-console",
        "Data_JSON__c": json.dumps(
            sample_json("generic", "order.created")["data"], separators=(",", ":")
        ),
    },
    ("Order__c", "ORD-TEST-10042"): {
        "Generic_Order_Id__c": "ORD-TEST-10042",
        "Status__c": "created",
        "Currency__c": "EUR",
        "Total__c": 149.5,
        "Customer_Id__c": "CUS-TEST-0007",
        "Customer_Name__c": "Sam Sample",
        "Customer_Email__c": "sam.sample@example.com",
        "Ordered_At__c": "2026-03-14T09:26:52.001Z",
        "Last_Event__c": "order.created",
    },
    **{
        ("Order_Line__c", f"ORD-TEST-10042/{sku}"): {
            "Generic_Line_Key__c": f"ORD-TEST-10042/{sku}",
            "SKU__c": sku,
            "Name": name,
            "Quantity__c": quantity,
            "Unit_Price__c": price,
            "Order__r": {"Generic_Order_Id__c": "ORD-TEST-10042"},
        }
        for sku, name, quantity, price in [
            ("SKU-TEST-0001", "Example Widget", 2, 49.75),
            ("SKU-TEST-0009", "Example Service Plan", 1, 50),
        ]
    },
}

END_TO_END = [
    # (mapping, connector, event type of the shipped sample, the records it must give)
    # a sale with three items: one order and three lines pointing at it, and the member account
    ("xilnex-complete-sales", "xilnex", "Complete Sales", XILNEX_SALE),
    # a cycle count with its per-SKU counts: the count and a line per SKU
    ("xemelgo-cycle-counts", "xemelgo", "inventory.cycle_count", CYCLE_COUNT),
    # an inventory item moved: where it is now, and the move in its log
    ("xemelgo-inventory-moves", "xemelgo", "inventory.moved", INVENTORY_MOVE),
    # an asset moved: the same two objects, keyed by the asset id
    ("xemelgo-inventory-moves", "xemelgo", "asset.moved", ASSET_MOVE),
    # a new order carrying its rows: the order with customer and warehouse, and three lines
    ("xtnd-orders", "xtnd", "OrderCreated", XTND_ORDER_CREATED),
    # one delivery picking two orders (one twice): two orders, status only, no lines
    ("xtnd-orders", "xtnd", "OrderPicked", XTND_ORDERS_PICKED),
    # a product XTND only names by number: flagged for a refresh, creation time kept
    ("xtnd-products", "xtnd", "ProductCreated", XTND_PRODUCT_CREATED),
    # a customer XTND only names by number: flagged for a refresh, creation time kept
    ("xtnd-customers", "xtnd", "CustomerCreated", XTND_CUSTOMER_CREATED),
    # a stock balance for product+warehouse, linked to the product
    ("xtnd-balances", "xtnd", "BalanceChanged", XTND_BALANCE),
    # an available balance for product+warehouse, linked to the product
    ("xtnd-balances", "xtnd", "AvailableBalanceChanged", XTND_AVAILABLE_BALANCE),
    # a generic order event: the event log record, the order and its two lines
    ("generic-events", "generic", "order.created", GENERIC_ORDER),
]


@pytest.mark.parametrize(("mapping", "connector", "event_type", "expected"), END_TO_END)
def test_each_shipped_mapping_turns_its_signed_sample_into_the_expected_records(
    gw: Any,
    admin: Any,
    group_factory: Any,
    deliver: Any,
    worker: Any,
    mapping: str,
    connector: str,
    event_type: str,
    expected: Records,
) -> None:
    versions = load_shipped(gw)
    group = wire(admin, group_factory, connector, mapping, [event_type])

    delivery_id = send(deliver, group, event_type)
    worker.drain()

    events = events_of(admin, delivery_id)
    assert [e["status"] for e in events] == ["delivered"] * len(events)
    by_id = {e["id"]: e for e in events}
    if any(EVENT_ID in key for key in expected):
        (only,) = events
        expected = {(obj, resolve(ext, only)): fields for (obj, ext), fields in expected.items()}
    assert stored_keys(gw) == set(expected)
    for (obj, external_id), fields in expected.items():
        found = record(admin, obj, external_id)
        assert found is not None, f"no {obj} {external_id}"
        source = by_id[found["source_event_id"]]
        assert found["fields"] == resolve(fields, source), f"{obj} {external_id}"
    history = [row for e in events for row in e["history"] if row["mapping"] is not None]
    assert {row["mapping"]["name"] for row in history} == {mapping}
    assert {row["mapping"]["version"] for row in history} == {versions[mapping]}
    written = [row for row in history if row["outcome"] != "skipped"]
    assert {(row["object"], row["external_id"]) for row in written} == set(expected)
    assert {row["outcome"] for row in written} <= {"created", "updated"}


def test_a_xilnex_sale_with_three_lines_gives_one_order_and_three_lines_linked_to_it(
    gw: Any, admin: Any, group_factory: Any, deliver: Any, worker: Any
) -> None:
    load_shipped(gw)
    group = wire(admin, group_factory, "xilnex", "xilnex-complete-sales", ["Complete Sales"])

    send(deliver, group, "Complete Sales")
    worker.drain()

    order = record(admin, "Sales_Order__c", "SL-000000-0001")
    assert order is not None
    assert order["fields"]["Grand_Total__c"] == 138.9
    lines = [record(admin, "Sales_Order_Line__c", f"SL-000000-0001-{n}") for n in (1, 2, 3, 4)]
    assert lines[3] is None
    assert [line["fields"]["Sales_Order__r"] for line in lines[:3] if line] == [
        {"Xilnex_Sale_Id__c": "SL-000000-0001"}
    ] * 3
    assert {key[0] for key in stored_keys(gw)} == {
        "Account",
        "Sales_Order__c",
        "Sales_Order_Line__c",
    }
    assert len(stored_keys(gw)) == 1 + 1 + 3


def test_xtnd_order_actions_move_the_status_without_blanking_what_earlier_ones_wrote(
    gw: Any, admin: Any, group_factory: Any, deliver: Any, worker: Any
) -> None:
    load_shipped(gw)
    events = ["OrderCreated", "OrderPicked", "OrderDeliveryDataChanged"]
    group = wire(admin, group_factory, "xtnd", "xtnd-orders", events)
    created = send(deliver, group, "OrderCreated")
    worker.drain()
    later = sample_json("xtnd", "OrderPicked")
    later["Properties"]["NotificationId"] = "6f1d2c3b-0000-4a5b-9c8d-7e6f00000099"
    later["Notifications"] = [
        {"Action": action, "Details": {"OrderNumber": "3339887", "OrderType": "NormalOrder"}}
        for action in ("OrderPicked", "OrderDeliveryDataChanged")
    ]

    picked = send(deliver, group, "OrderPicked", json.dumps(later).encode())
    worker.drain()

    picked_at, changed_at = (e["received_at"] for e in events_of(admin, picked))
    order = record(admin, "Order__c", "3339887")
    assert order is not None
    assert order["fields"] == {
        "XTND_Order_Number__c": "3339887",
        "Status__c": "Picked",
        "Order_Type__c": "NormalOrder",
        "Last_Action__c": "OrderPicked",
        "Last_Action_At__c": sf_datetime(picked_at),
        "Customer_Number__c": "817472",  # only OrderCreated carries these three
        "Warehouse__c": "ADR-1",
        "Line_Count__c": 3,
        "Delivery_Data_Changed_At__c": sf_datetime(changed_at),
    }
    assert len([key for key in stored_keys(gw) if key[0] == "Order_Line__c"]) == 3

    (first,) = events_of(admin, created)
    assert admin.post(f"/events/{first['id']}/replay").status_code == 200
    worker.drain()

    # Replaying the older OrderCreated rewrites its lines but cannot take the order back.
    replayed = admin.get(f"/events/{first['id']}").get_json()
    outcomes = {
        (row["upsert_key"], row["outcome"])
        for row in replayed["history"][len(first["history"]) :]
        if row["mapping"]
    }
    assert outcomes == {
        ("order", "stale"),
        ("order_details", "stale"),
        ("line", "updated"),
        ("delivery_change", "skipped"),  # its when is for OrderDeliveryDataChanged only
    }
    order = record(admin, "Order__c", "3339887")
    assert order is not None
    assert order["fields"]["Status__c"] == "Picked"


def test_xtnd_balance_and_available_balance_share_one_record_without_blanking_each_other(
    gw: Any, admin: Any, group_factory: Any, deliver: Any, worker: Any
) -> None:
    load_shipped(gw)
    events = ["BalanceChanged", "AvailableBalanceChanged"]
    group = wire(admin, group_factory, "xtnd", "xtnd-balances", events)
    available = sample_json("xtnd", "AvailableBalanceChanged")
    available["Notifications"][0]["Details"]["ProductNumber"] = "7495"

    send(deliver, group, "BalanceChanged")
    send(deliver, group, "AvailableBalanceChanged", json.dumps(available).encode())
    worker.drain()

    balance = record(admin, "Stock_Balance__c", "7495@YX")
    assert balance is not None
    assert (balance["fields"]["Balance__c"], balance["fields"]["Available_Balance__c"]) == (43, 22)
    assert stored_keys(gw) == {("Product__c", "7495"), ("Stock_Balance__c", "7495@YX")}


def test_a_late_older_move_is_logged_but_does_not_move_the_item_back(
    gw: Any, admin: Any, group_factory: Any, deliver: Any, worker: Any
) -> None:
    load_shipped(gw)
    group = wire(admin, group_factory, "xemelgo", "xemelgo-inventory-moves", ["inventory.moved"])
    older = sample_json("xemelgo", "inventory.moved")
    newer = copy.deepcopy(older)
    newer["eventTimestamp"] += 60_000
    newer["data"]["movedAt"] += 60_000
    newer["data"]["fromLocation"] = older["data"]["toLocation"]
    newer["data"]["toLocation"] = {"id": "loc-test-shipping", "name": "Test Warehouse / Shipping"}

    send(deliver, group, "inventory.moved", json.dumps(newer).encode())
    worker.drain()
    late = send(deliver, group, "inventory.moved")  # the sample, a minute older
    worker.drain()

    location = record(admin, "Item_Location__c", "inv-test-000987")
    assert location is not None
    assert location["fields"]["Location_Id__c"] == "loc-test-shipping"
    assert location["fields"]["Previous_Location_Id__c"] == "loc-test-aisle-04"
    moves = {key for key in stored_keys(gw) if key[0] == "Item_Move__c"}
    assert moves == {
        ("Item_Move__c", "inv-test-000987@1765573512345"),
        ("Item_Move__c", "inv-test-000987@1765573572345"),
    }
    (event,) = events_of(admin, late)
    assert event["status"] == "delivered"
    outcomes = {row["upsert_key"]: row["outcome"] for row in event["history"] if row["mapping"]}
    assert outcomes == {"location": "stale", "move": "created"}


def test_a_late_older_cycle_count_is_stale_and_changes_nothing(
    gw: Any, admin: Any, group_factory: Any, deliver: Any, worker: Any
) -> None:
    load_shipped(gw)
    group = wire(admin, group_factory, "xemelgo", "xemelgo-cycle-counts", ["inventory.cycle_count"])
    newer = sample_json("xemelgo", "inventory.cycle_count")
    newer["eventTimestamp"] += 1
    newer["data"]["summary"]["found"] = 118
    newer["data"]["counts"][0]["found"] = 60

    send(deliver, group, "inventory.cycle_count", json.dumps(newer).encode())
    worker.drain()
    late = send(deliver, group, "inventory.cycle_count")  # the sample, a millisecond older
    worker.drain()

    (event,) = events_of(admin, late)
    assert event["status"] == "stale"
    count = record(admin, "Cycle_Count__c", "cc-0000-test-0001")
    line = record(admin, "Cycle_Count_Line__c", "cc-0000-test-0001/SKU-TEST-0001")
    assert count is not None and line is not None
    assert (count["fields"]["Found__c"], line["fields"]["Found__c"]) == (118, 60)


def test_generic_events_other_than_orders_are_only_logged(
    gw: Any, admin: Any, group_factory: Any, deliver: Any, worker: Any
) -> None:
    load_shipped(gw)
    group = wire(admin, group_factory, "generic", "generic-events", ["user.created"])
    body = {
        "event_time": "2026-03-14T10:00:00Z",
        "event_type": "user.created",
        "current_context": {"tenant_id": "tenant-example", "source": "admin-console"},
        "data": {"user_id": "user-0043", "email": "Pat.Placeholder@Example.com"},
    }

    delivery_id = send(deliver, group, "order.created", json.dumps(body).encode())
    worker.drain()

    (event,) = events_of(admin, delivery_id)
    assert event["status"] == "delivered"
    assert stored_keys(gw) == {("Webhook_Event__c", event["id"])}
    logged = record(admin, "Webhook_Event__c", event["id"])
    assert logged is not None
    assert logged["fields"]["Event_Type__c"] == "user.created"
    assert json.loads(logged["fields"]["Data_JSON__c"]) == body["data"]


# --- the files themselves ----------------------------------------------------------------


@pytest.mark.parametrize("filename", SHIPPED)
def test_every_shipped_mapping_file_is_a_valid_described_document(filename: str) -> None:
    (document,) = [d for p, d in load_mapping_files(MAPPINGS) if p.name == filename]

    validate_document(document, name=Path(filename).stem)
    assert document["description"].strip()


def test_the_shipped_mappings_cover_every_seed_provider() -> None:
    names = {Path(filename).stem for filename in SHIPPED}

    assert names >= {
        "xilnex-complete-sales",
        "xemelgo-cycle-counts",
        "xemelgo-inventory-moves",
        "xtnd-orders",
        "xtnd-products",
        "xtnd-customers",
        "xtnd-balances",
        "generic-events",
    }


def test_the_admin_api_accepts_every_shipped_mapping(admin: Any) -> None:
    for _, document in load_mapping_files(MAPPINGS):
        response = admin.put(f"/mappings/{document['name']}", document)
        assert response.status_code == 201, response.get_json()


@pytest.fixture
def load_cli(settings: Settings) -> Callable[[Path], str]:
    """``gateway mappings load DIR`` as a user runs it, on this test's database; its output."""

    def load(directory: Path) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "gateway", "mappings", "load", str(directory)],
            env=process_env(settings),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    return load


def versions_by_name(admin: Any) -> dict[str, int]:
    items = admin.get("/mappings").get_json()["items"]
    return {item["name"]: item["version"] for item in items}


def test_the_cli_loads_every_file_then_makes_new_versions_only_for_changed_files(
    load_cli: Callable[[Path], str], admin: Any, tmp_path: Path
) -> None:
    names = {Path(filename).stem for filename in SHIPPED}

    first = load_cli(MAPPINGS)

    assert versions_by_name(admin) == dict.fromkeys(names, 1)
    assert first.count("(new version)") == len(SHIPPED)

    again = load_cli(MAPPINGS)

    assert versions_by_name(admin) == dict.fromkeys(names, 1)
    assert again.count("(unchanged)") == len(SHIPPED)

    directory = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, directory)
    changed = directory / "xtnd-orders.yaml"
    document = yaml.safe_load(changed.read_text(encoding="utf-8"))
    document["upserts"][0]["fields"]["Source__c"] = "'XTND'"
    changed.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")

    third = load_cli(directory)

    assert versions_by_name(admin) == {**dict.fromkeys(names, 1), "xtnd-orders": 2}
    assert third.count("(new version)") == 1
    assert "xtnd-orders.yaml: xtnd-orders v2 (new version)" in third
    newest = admin.get("/mappings/xtnd-orders").get_json()["document"]
    assert newest["upserts"][0]["fields"]["Source__c"] == "'XTND'"

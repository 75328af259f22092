"""Builders of realistic provider deliveries for tests, and senders' schemes said as data."""

from __future__ import annotations

import json
from typing import Any


def xtnd_delivery(
    delivery: str, details: list[dict[str, Any]], action: str = "OrderPicked"
) -> bytes:
    """An XTND delivery carrying one notification per ``details`` entry, as XTND batches them."""
    return json.dumps(
        {
            "Id": f"d-{delivery}",
            "Attempt": 1,
            "Properties": {"NotificationId": f"n-{delivery}"},
            "Notifications": [{"Action": action, "Details": d} for d in details],
        }
    ).encode()


#: A Xilnex sale whose event type is where the shipped profile does not look (``EventName``).
XILNEX_SALE = json.dumps(
    {"eventName": "Complete Sales", "EventTime": "2026-12-05T10:00:00Z", "SalesNo": "S-1001"}
).encode()
#: Stripe's scheme said as data: the timestamp is an item of the signature header.
STRIPE_AS_HMAC = {
    "scheme": "hmac",
    "header": "Stripe-Signature",
    "format": "t={timestamp},v1={signature}",
    "separator": ",",
    "signed_content": "{timestamp}.{body}",
    "tolerance_s": 300,
}
#: Standard Webhooks said as data: the id and timestamp have headers of their own.
SW_AS_HMAC = {
    "scheme": "hmac",
    "header": "webhook-signature",
    "format": "v1,{signature}",
    "separator": " ",
    "encoding": "base64",
    "key_encoding": "base64",
    "signed_content": "{id}.{timestamp}.{body}",
    "parts": {"id": "webhook-id", "timestamp": "webhook-timestamp"},
    "tolerance_s": 300,
}


def picked_orders_group(admin: Any, group_factory: Any, mapping: dict[str, Any]) -> dict[str, Any]:
    """An XTND group with one webhook record sending its OrderPicked events through
    ``mapping`` (saved first)."""
    admin.put(f"/mappings/{mapping['name']}", mapping)
    created: dict[str, Any] = group_factory(
        connector="xtnd", function="backend", events=["OrderPicked"]
    )
    admin.post(
        f"/webhooks/{created['template_webhook_id']}/clone",
        {"label": "Picked", "events": ["OrderPicked"], "mapping": mapping["name"]},
    )
    return created

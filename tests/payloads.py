"""Builders of realistic provider deliveries for tests."""

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

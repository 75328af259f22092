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

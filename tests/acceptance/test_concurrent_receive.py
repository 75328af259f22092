"""Many senders at once through a real gunicorn: every accepted event is stored exactly once."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from gateway.connectors import shipped_profiles
from gateway.verify import sign
from tests.acceptance.conftest import Api

SECRET = "concurrency-test-secret-0123456789"
SENDERS = 16
UNIQUE = 200
REPEATED = 60  # providers retry: some bodies arrive twice, from different senders


def _body(n: int) -> bytes:
    event = {
        "id": f"d-{n}",
        "eventTimestamp": 1765572297000 + n,
        "topic": "inventory.moved",
        "data": {"n": n},
    }
    return json.dumps(event).encode()


def test_concurrent_deliveries_are_stored_exactly_once(start_web: Any, settings: Any) -> None:
    url, _ = start_web()
    api = Api(url, settings.admin_token)
    group = api.post(
        "/groups",
        json={
            "name": "load",
            "connector": "xemelgo",
            "function": "webhooks",
            "secret": SECRET,
            "events": ["inventory.moved"],
        },
    ).json()
    spec = shipped_profiles()["xemelgo"].verification
    bodies = [_body(n) for n in range(UNIQUE)] + [_body(n) for n in range(REPEATED)]

    def send(body: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", **sign(spec, SECRET, body)}
        response = requests.post(group["callback_url"], data=body, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    with ThreadPoolExecutor(SENDERS) as pool:
        answers = list(pool.map(send, bodies))

    assert sum(a["accepted"] for a in answers) == UNIQUE
    assert sum(a["duplicates"] for a in answers) == REPEATED
    assert len({a["delivery_id"] for a in answers}) == len(bodies)
    stored = _all_events(api, group["id"])
    originals = [e for e in stored if e["status"] != "duplicate"]
    assert len(originals) == UNIQUE
    assert len({e["dedupe_key"] for e in originals}) == UNIQUE
    assert len(stored) - len(originals) == REPEATED


def _all_events(api: Api, group_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"group_id": group_id, "limit": 500, **({"cursor": cursor} if cursor else {})}
        page = api.get("/events", params=params).json()
        events += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return events

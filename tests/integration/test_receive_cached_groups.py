"""The receive endpoint keeps groups it has read; no change to a group may slip past that cache.

Each test delivers once so the group is cached, changes the group through the admin API, and
delivers again: the second delivery must see the change, and nothing must be stored for it.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from gateway.models import Delivery


def _cycle_count(n: int) -> bytes:
    return json.dumps(
        {"id": f"d-{n}", "eventTimestamp": 1765572297000 + n, "topic": "inventory.cycle_count"}
        | {"data": {"n": n}}
    ).encode()


def _stored(gw: Any) -> int:
    with gw.db.read_session() as session:
        return int(session.scalar(select(func.count()).select_from(Delivery)) or 0)


def test_a_cached_token_is_not_found_once_the_url_is_rotated(
    gw: Any, group_factory: Any, admin: Any, deliver: Any
) -> None:
    group = group_factory()
    assert deliver(group, _cycle_count(1)).status_code == 200
    rotated = admin.post(f"/groups/{group['id']}/rotate-url").get_json()

    assert deliver(group, _cycle_count(2)).status_code == 404
    assert _stored(gw) == 1
    new = {**group, "token": rotated["callback_url"].rsplit("/", 1)[1]}
    assert deliver(new, _cycle_count(3)).status_code == 200


def test_a_cached_group_is_not_found_once_disabled(
    gw: Any, group_factory: Any, admin: Any, deliver: Any
) -> None:
    group = group_factory()
    assert deliver(group, _cycle_count(1)).status_code == 200
    admin.patch(f"/groups/{group['id']}", {"active": False})

    assert deliver(group, _cycle_count(2)).status_code == 404
    assert _stored(gw) == 1


def test_a_cached_group_is_not_found_once_deleted(
    gw: Any, group_factory: Any, admin: Any, deliver: Any
) -> None:
    group = group_factory()
    assert deliver(group, _cycle_count(1)).status_code == 200
    admin.delete(f"/groups/{group['id']}")

    assert deliver(group, _cycle_count(2)).status_code == 404
    assert _stored(gw) == 1


def test_a_cached_secret_is_refused_once_rotated_out(
    gw: Any, group_factory: Any, admin: Any, deliver: Any
) -> None:
    group = group_factory()
    assert deliver(group, _cycle_count(1)).status_code == 200
    new_secret = "rotated-secret-0123456789abcdef"
    admin.post(
        f"/groups/{group['id']}/rotate-secret", {"secret": new_secret, "previous_valid_for_s": 0}
    )

    assert deliver(group, _cycle_count(2)).status_code == 401
    assert deliver(group, _cycle_count(3), secret=new_secret).status_code == 200
    assert _stored(gw) == 2


def test_newly_registered_events_are_taken_from_a_cached_group(
    group_factory: Any, admin: Any, deliver: Any
) -> None:
    group = group_factory(events=["inventory.moved"])
    assert deliver(group, _cycle_count(1)).get_json()["ignored"] == 1
    admin.patch(f"/groups/{group['id']}", {"events": ["inventory.cycle_count"]})

    assert deliver(group, _cycle_count(2)).get_json()["accepted"] == 1

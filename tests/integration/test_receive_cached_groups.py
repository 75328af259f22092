"""The receive endpoint keeps groups it has read; no change to a group may slip past that cache.

Each test delivers once so the group is cached, changes the group through the admin API, and
delivers again: the second delivery must see the change, and nothing must be stored for it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.models import Delivery


def _cycle_count(n: int) -> bytes:
    return json.dumps(
        {"id": f"d-{n}", "eventTimestamp": 1765572297000 + n, "topic": "inventory.cycle_count"}
        | {"data": {"n": n}}
    ).encode()


NEW_SECRET = "changed-test-secret-0123456789abcdef"


def _stored(gw: Any) -> int:
    """Accepted deliveries: refused ones leave rows of their own."""
    accepted = select(func.count()).where(Delivery.outcome == "accepted")
    with gw.db.read_session() as session:
        return int(session.scalar(accepted) or 0)


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


def _rotate(window: int) -> tuple[str, str, dict[str, Any]]:
    return "POST", "/rotate-secret", {"secret": NEW_SECRET, "previous_valid_for_s": window}


PATCH_SECRET = ("PATCH", "", {"secret": NEW_SECRET})
DISABLE = ("PATCH", "", {"active": False})
ENABLE = ("PATCH", "", {"active": True})


@pytest.mark.parametrize(
    ("first_secret", "changes"),
    [
        ("first-test-secret-0123456789abcdef", [_rotate(0)]),
        ("first-test-secret-0123456789abcdef", [PATCH_SECRET]),
        # created without a secret: the cached group answers secret_missing until re-read
        (None, [PATCH_SECRET]),
        # changed while disabled, then enabled again: the cached group was never told
        ("first-test-secret-0123456789abcdef", [DISABLE, _rotate(0), ENABLE]),
    ],
    ids=["rotate-secret", "patch-secret", "secret-added", "changed-while-disabled"],
)
def test_the_first_delivery_signed_with_a_new_secret_is_accepted(
    gw: Any,
    group_factory: Any,
    admin: Any,
    deliver: Any,
    first_secret: str | None,
    changes: list[tuple[str, str, dict[str, Any]]],
) -> None:
    group = group_factory(secret=first_secret)
    deliver(group, _cycle_count(1))  # caches the group, whether it is accepted or not
    for method, suffix, body in changes:
        assert admin.call(method, f"/groups/{group['id']}{suffix}", json=body).status_code == 200

    assert deliver(group, _cycle_count(2), secret=NEW_SECRET).status_code == 200
    assert deliver(group, _cycle_count(3)).status_code == 401
    assert _stored(gw) == (2 if first_secret else 1)


def test_a_cached_group_switched_to_no_verification_accepts_unsigned_deliveries(
    group_factory: Any, admin: Any, deliver: Any
) -> None:
    group = group_factory(
        connector="xtnd",
        function="backend",
        events=["OrderCreated"],
        secret="xtnd-test-secret-0123456789",
    )
    assert deliver(group, _xtnd_order(1)).status_code == 200
    admin.patch(f"/groups/{group['id']}", {"secret": "-"})  # XTND's "no secret" setting

    assert deliver(group, _xtnd_order(2), signed=False).status_code == 200


def _xtnd_order(n: int) -> bytes:
    return json.dumps(
        {"Properties": {"NotificationId": f"n-{n}"}, "Notifications": [{"Action": "OrderCreated"}]}
    ).encode()


@pytest.mark.parametrize(
    ("change", "body", "content_type"),
    [
        ("rotate-url", _cycle_count(2), "text/plain"),
        ("rotate-url", b"{not json", "application/json"),
        ("disable", _cycle_count(2), "text/plain"),
        ("delete", b"{not json", "application/json"),
    ],
)
def test_a_cached_token_gone_is_not_found_whatever_else_is_wrong(
    gw: Any,
    group_factory: Any,
    admin: Any,
    deliver: Any,
    change: str,
    body: bytes,
    content_type: str,
) -> None:
    """A refusal would tell whoever holds an old URL that it once worked."""
    group = group_factory()
    assert deliver(group, _cycle_count(1)).status_code == 200
    {
        "rotate-url": lambda: admin.post(f"/groups/{group['id']}/rotate-url"),
        "disable": lambda: admin.patch(f"/groups/{group['id']}", {"active": False}),
        "delete": lambda: admin.delete(f"/groups/{group['id']}"),
    }[change]()

    assert deliver(group, body, content_type=content_type).status_code == 404

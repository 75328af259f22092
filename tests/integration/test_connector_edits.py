"""Custom connector profiles edited, versioned and deleted; senders as data; ``*`` events; the
group's description, contact and name as mappings read them."""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import standardwebhooks
import stripe
from flask.testing import FlaskClient

from gateway.config import Settings
from gateway.services import Gateway
from gateway.verify import sign
from tests.payloads import STRIPE_AS_HMAC, SW_AS_HMAC

SECRET = "test-connector-secret-0123456789"
SW_SECRET = "whsec_" + base64.b64encode(b"fake connector test signing key").decode()
BODY = b'{"id": "evt_1", "type": "order.paid", "data": {"order": "o-1"}}'

#: A custom profile; each test changes the copy it gets from ``profile``.
SHOP = {
    "name": "shop",
    "title": "Test shop",
    "functions": [{"name": "orders", "events": ["order.paid", "order.cancelled"]}],
    "verification": {"scheme": "hmac", "header": "X-Shop-Signature", "prefix": "sha256="},
    "events": {"type": {"jmespath": "type"}, "id": {"jmespath": "id"}},
}
#: Each event of the shop as an Order__c record.
ORDER_MAPPING = {
    "name": "orders",
    "upserts": [
        {
            "key": "order",
            "object": "Order__c",
            "external_id_field": "Event_Id__c",
            "external_id": "payload.id",
            "fields": {"Type__c": "event.type"},
        }
    ],
}


@pytest.fixture
def profile() -> Callable[..., dict[str, Any]]:
    """A fresh copy of ``SHOP``; keyword arguments replace its top-level keys."""

    def make(**overrides: Any) -> dict[str, Any]:
        return {**copy.deepcopy(SHOP), **overrides}

    return make


@pytest.fixture
def shop(admin: Any, profile: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """The shop profile, created by PUT."""
    response = admin.put("/connectors/shop", profile())
    assert response.status_code == 201, response.get_json()
    shown: dict[str, Any] = response.get_json()
    return shown


@pytest.fixture
def shop_group(shop: dict[str, Any], group_factory: Any) -> dict[str, Any]:
    group: dict[str, Any] = group_factory(
        connector="shop", function="orders", secret=SECRET, events=["order.paid"]
    )
    return group


def stripe_signed(body: bytes = BODY, secret: str = SECRET) -> dict[str, str]:
    """Headers as Stripe sends them, signed by the stripe package."""
    header = stripe.WebhookSignature.generate_signature_header(
        body.decode(), secret, timestamp=int(time.time())
    )
    return {"Content-Type": "application/json", "Stripe-Signature": header}


def svix_signed(body: bytes = BODY, msg_id: str = "msg_1") -> dict[str, str]:
    """Headers as a Standard Webhooks sender sends them, signed by the standardwebhooks package."""
    now = datetime.now(UTC)
    signature = standardwebhooks.Webhook(SW_SECRET).sign(msg_id, now, body.decode())
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


def post(client: FlaskClient, group: dict[str, Any], headers: dict[str, str]) -> Any:
    return client.post(f"/hooks/{group['token']}", data=BODY, headers=headers)


def error_of(response: Any) -> dict[str, Any]:
    error: dict[str, Any] = response.get_json()["error"]
    return error


# --- versions and history ----------------------------------------------------------------


def test_put_makes_a_profile_then_a_new_version_for_each_change(
    admin: Any, shop: dict[str, Any], profile: Callable[..., dict[str, Any]]
) -> None:
    added = profile()
    added["functions"][0]["events"].append("order.refunded")

    changed = admin.put("/connectors/shop", added)
    unchanged = admin.put("/connectors/shop", added)
    shown = admin.get("/connectors/shop").get_json()

    assert (shop["version"], shop["custom"]) == (1, True)
    assert changed.status_code == 200
    assert unchanged.status_code == 200
    assert shown["version"] == 2
    assert "order.refunded" in shown["functions"][0]["events"]
    assert [(v["version"], v["changes"]) for v in shown["history"]] == [
        (2, ["functions"]),
        (1, ["created"]),
    ]


def test_a_profile_read_by_get_can_be_changed_and_sent_back(
    admin: Any, shop: dict[str, Any]
) -> None:
    shown = admin.get("/connectors/shop").get_json()
    shown["title"] = "Test shop, renamed"

    response = admin.put("/connectors/shop", shown)

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["title"] == "Test shop, renamed"
    assert response.get_json()["version"] == 2


def test_an_edit_of_a_version_of_a_profile_that_does_not_exist_is_404(
    admin: Any, profile: Callable[..., dict[str, Any]]
) -> None:
    response = admin.put("/connectors/shop", {**profile(), "version": 3})

    assert response.status_code == 404
    assert admin.get("/connectors/shop").status_code == 404


def test_a_change_made_to_an_older_version_is_a_conflict(
    admin: Any, shop: dict[str, Any], profile: Callable[..., dict[str, Any]]
) -> None:
    assert admin.put("/connectors/shop", profile(title="First edit")).status_code == 200

    late = admin.put("/connectors/shop", {**profile(title="Second edit"), "version": 1})

    assert late.status_code == 409
    assert error_of(late)["code"] == "version_conflict"
    assert admin.get("/connectors/shop").get_json()["title"] == "First edit"


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"verification": {"scheme": "hmac"}}, "verification"),
        ({"verification": {**STRIPE_AS_HMAC, "signed_content": "{nonce}.{body}"}}, "verification"),
        ({"name": "another"}, "name"),
        ({"functions": []}, "functions"),
    ],
    ids=["no header", "part from nowhere", "another name", "no function"],
)
def test_an_invalid_version_is_422_with_details_and_changes_nothing(
    admin: Any,
    shop: dict[str, Any],
    profile: Callable[..., dict[str, Any]],
    document: dict[str, Any],
    path: str,
) -> None:
    response = admin.put("/connectors/shop", profile(**document))

    assert response.status_code == 422
    assert any(d["path"].startswith(path) for d in error_of(response)["details"])
    assert admin.get("/connectors/shop").get_json()["version"] == 1


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_shipped_profiles_are_read_only(admin: Any, method: str) -> None:
    document = admin.get("/connectors/xtnd").get_json()

    response = admin.call(method, "/connectors/xtnd", json=document)

    assert response.status_code == 409
    assert error_of(response)["code"] == "connector_read_only"
    shown = admin.get("/connectors/xtnd").get_json()
    assert (shown["version"], shown["custom"], shown["history"]) == (None, False, [])


def test_a_version_that_takes_events_or_the_function_from_a_group_is_refused(
    admin: Any, shop_group: dict[str, Any], profile: Callable[..., dict[str, Any]]
) -> None:
    no_paid = profile(functions=[{"name": "orders", "events": ["order.cancelled"]}])
    renamed = profile(functions=[{"name": "sales", "events": ["order.paid"]}])

    answers = [admin.put("/connectors/shop", doc) for doc in (no_paid, renamed)]

    assert [a.status_code for a in answers] == [409, 409]
    assert [error_of(a)["code"] for a in answers] == ["connector_in_use"] * 2
    assert "'order.paid'" in error_of(answers[0])["details"][0]["message"]
    assert "'Test group'" in error_of(answers[1])["details"][0]["message"]
    assert admin.get("/connectors/shop").get_json()["version"] == 1


def test_a_version_that_takes_an_event_from_a_webhook_record_is_refused(
    admin: Any, shop: dict[str, Any], group_factory: Any, profile: Callable[..., dict[str, Any]]
) -> None:
    group = group_factory(connector="shop", function="orders", secret=SECRET, events=["*"])
    clone = admin.post(
        f"/webhooks/{group['template_webhook_id']}/clone",
        {"label": "Cancellations", "events": ["order.cancelled"]},
    )
    assert clone.status_code == 201

    response = admin.put(
        "/connectors/shop", profile(functions=[{"name": "orders", "events": ["order.paid"]}])
    )

    assert response.status_code == 409
    assert "webhook record 'Cancellations'" in error_of(response)["details"][0]["message"]


def test_a_profile_is_deleted_only_once_no_group_uses_it(
    admin: Any, shop_group: dict[str, Any]
) -> None:
    in_use = admin.delete("/connectors/shop")
    assert admin.delete(f"/groups/{shop_group['id']}").status_code == 204
    deleted = admin.delete("/connectors/shop")

    assert in_use.status_code == 409
    assert error_of(in_use)["code"] == "connector_in_use"
    assert shop_group["id"] in error_of(in_use)["details"][0]["message"]
    assert deleted.status_code == 204
    assert admin.get("/connectors/shop").status_code == 404
    assert admin.delete("/connectors/shop").status_code == 404


# --- a verification change applies to deliveries received after it ---------------------------


def test_a_verification_change_applies_to_deliveries_received_after_it(
    admin: Any,
    client: FlaskClient,
    shop_group: dict[str, Any],
    deliver: Any,
    profile: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = deliver(shop_group, BODY)
    with caplog.at_level("INFO", logger="gateway.registry"):
        changed = admin.put("/connectors/shop", profile(verification=STRIPE_AS_HMAC))
    old_way = post(client, shop_group, _hmac_headers(SECRET, BODY))
    new_way = post(client, shop_group, stripe_signed())

    assert before.status_code == 200
    assert changed.get_json()["history"][0]["changes"] == ["verification"]
    assert "version 2 (verification)" in caplog.text
    assert old_way.status_code == 401
    assert new_way.status_code == 200, new_way.get_json()


def test_another_process_verifies_with_the_new_version_from_the_first_delivery_after_it(
    admin: Any,
    settings: Settings,
    shop_group: dict[str, Any],
    profile: Callable[..., dict[str, Any]],
) -> None:
    """The other process has the profile and the group cached, and the old way still passes
    the cached version; the group's version, checked when the delivery commits, sends it back
    to be verified with the new one."""
    with _other_process(settings) as other:
        assert post(other, shop_group, {}).status_code == 401  # caches group and profile
        changed = admin.put("/connectors/shop", profile(verification=STRIPE_AS_HMAC))
        old_way = post(other, shop_group, _hmac_headers(SECRET, BODY))
        new_way = post(other, shop_group, stripe_signed())

    assert changed.status_code == 200
    assert old_way.status_code == 401
    assert new_way.status_code == 200, new_way.get_json()


def _hmac_headers(secret: str, body: bytes) -> dict[str, str]:
    """Headers as the shop signed before its profile changed."""
    headers = sign(SHOP["verification"], secret, body)  # type: ignore[arg-type]
    return {"Content-Type": "application/json", **headers}


class _other_process:
    """A second gateway and app on the same database, as another gunicorn worker would be."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def __enter__(self) -> FlaskClient:
        from gateway.web import create_app

        self._gw = Gateway(self._settings)
        return create_app(gateway=self._gw).test_client()

    def __exit__(self, *exc: object) -> None:
        self._gw.close()


# --- senders as data: a Stripe-like and a Svix-like profile, no code -------------------------


@pytest.mark.parametrize(
    ("verification", "secret", "signed"),
    [
        (STRIPE_AS_HMAC, SECRET, stripe_signed),
        (SW_AS_HMAC, SW_SECRET, svix_signed),
    ],
    ids=["stripe-like", "svix-like"],
)
def test_a_custom_profile_verifies_what_the_reference_libraries_sign(
    admin: Any,
    client: FlaskClient,
    group_factory: Any,
    profile: Callable[..., dict[str, Any]],
    verification: dict[str, Any],
    secret: str,
    signed: Callable[..., dict[str, str]],
) -> None:
    assert admin.put("/connectors/shop", profile(verification=verification)).status_code == 201
    group = group_factory(connector="shop", function="orders", secret=secret, events=["*"])

    accepted = post(client, group, signed())
    tampered = client.post(
        f"/hooks/{group['token']}", data=BODY.replace(b"o-1", b"o-2"), headers=signed()
    )
    unsigned = post(client, group, {"Content-Type": "application/json"})

    assert accepted.status_code == 200, accepted.get_json()
    assert accepted.get_json()["accepted"] == 1
    assert tampered.status_code == 401
    assert error_of(tampered)["code"] == "signature_mismatch"
    assert unsigned.status_code == 401


# --- "*": every event of the function, including ones added later ----------------------------


def test_a_group_taking_every_event_takes_one_added_to_the_profile_later(
    admin: Any,
    shop: dict[str, Any],
    group_factory: Any,
    deliver: Any,
    worker: Any,
    profile: Callable[..., dict[str, Any]],
) -> None:
    group = group_factory(connector="shop", function="orders", secret=SECRET, events=["*"])
    assert admin.put("/mappings/orders", ORDER_MAPPING).status_code == 201
    clone = admin.post(
        f"/webhooks/{group['template_webhook_id']}/clone",
        {"label": "All", "events": ["*"], "mapping": "orders"},
    )
    added = profile()
    added["functions"][0]["events"].append("order.refunded")

    before = deliver(group, json.dumps({"id": "e-1", "type": "order.refunded"}).encode())
    assert admin.put("/connectors/shop", added).status_code == 200
    after = deliver(group, json.dumps({"id": "e-2", "type": "order.refunded"}).encode())
    worker.drain()
    events = admin.get(f"/events?group_id={group['id']}").get_json()["items"]
    previewed = admin.post("/mappings/orders/preview", {"last": 5}).get_json()["results"]

    assert clone.status_code == 201
    assert group["events"] == ["*"]
    assert before.get_json()["ignored"] == 1  # not in the closed catalog then
    assert after.get_json()["accepted"] == 1
    status = {e["dedupe_key"]: e["status"] for e in events}
    assert status == {"id:e-1": "ignored", "id:e-2": "delivered"}
    assert {r["event_type"] for r in previewed} == {"order.refunded"}  # a '*' record's events


def test_every_event_of_an_open_catalog_is_any_type(
    admin: Any, group_factory: Any, deliver: Any
) -> None:
    group = group_factory(connector="generic", function="webhooks", secret="-", events=["*"])

    answer = deliver(group, json.dumps({"event_type": "never.listed", "data": {}}).encode())

    assert answer.get_json()["accepted"] == 1


@pytest.mark.parametrize(
    ("group_events", "record_events", "status"),
    [
        (["*"], ["inventory.moved"], 201),  # a catalog event of a group taking them all
        (["*"], ["not.in.catalog"], 422),  # still only catalog events
        (["inventory.moved"], ["*"], 201),  # whatever the group registers
        (["inventory.moved"], ["asset.moved"], 422),
    ],
)
def test_which_events_a_webhook_record_may_take(
    admin: Any,
    group_factory: Any,
    group_events: list[str],
    record_events: list[str],
    status: int,
) -> None:
    group = group_factory(events=group_events)

    answer = admin.post(
        f"/webhooks/{group['template_webhook_id']}/clone",
        {"label": "Record", "events": record_events},
    )

    assert answer.status_code == status, answer.get_json()


def test_a_group_may_give_up_every_event_only_for_the_events_its_records_take(
    admin: Any, group_factory: Any
) -> None:
    group = group_factory(events=["*"])
    admin.post(
        f"/webhooks/{group['template_webhook_id']}/clone",
        {"label": "Moves", "events": ["inventory.moved"]},
    )

    refused = admin.patch(f"/groups/{group['id']}", {"events": ["asset.moved"]})
    kept = admin.patch(f"/groups/{group['id']}", {"events": ["inventory.moved"]})

    assert refused.status_code == 422
    assert "'Moves'" in error_of(refused)["details"][0]["message"]
    assert kept.status_code == 200


# --- description, contact, and the group as mappings see it ------------------------------


def test_a_group_carries_a_description_and_a_contact(admin: Any, group_factory: Any) -> None:
    group = group_factory(description="EU warehouse", contact="it@vendor.example")

    changed = admin.patch(f"/groups/{group['id']}", {"contact": "ops@vendor.example"})
    cleared = admin.patch(f"/groups/{group['id']}", {"description": None})

    assert (group["description"], group["contact"]) == ("EU warehouse", "it@vendor.example")
    assert changed.get_json()["contact"] == "ops@vendor.example"
    assert cleared.get_json()["description"] is None
    assert admin.get(f"/groups/{group['id']}").get_json()["contact"] == "ops@vendor.example"


def test_a_mapping_and_a_filter_read_the_group_name_and_external_id(
    admin: Any, shop: dict[str, Any], group_factory: Any, deliver: Any, worker: Any
) -> None:
    mapping = {
        "name": "orders-by-site",
        "upserts": [
            {
                "key": "order",
                "object": "Order__c",
                "external_id_field": "Key__c",
                "external_id": "join('-', [event.group.external_id, payload.data.order])",
                "fields": {"Site__c": "event.group.name"},
            }
        ],
    }
    assert admin.put("/mappings/orders-by-site", mapping).status_code == 201
    group = group_factory(
        name="Shop EU", connector="shop", function="orders", secret=SECRET, events=["*"]
    )
    admin.post(
        f"/webhooks/{group['template_webhook_id']}/clone",
        {
            "label": "EU only",
            "events": ["*"],
            "filter": "event.group.external_id == 'eu-1'",
            "mapping": "orders-by-site",
        },
    )
    assert admin.patch(f"/groups/{group['id']}", {"external_id": "eu-1"}).status_code == 200

    deliver(group, BODY)
    worker.drain()
    record = admin.get("/records/Order__c/eu-1-o-1")

    assert record.status_code == 200, record.get_json()
    assert record.get_json()["fields"]["Site__c"] == "Shop EU"


def test_a_secret_that_is_no_base64_key_is_refused_for_a_base64_keyed_profile(
    admin: Any, profile: Callable[..., dict[str, Any]]
) -> None:
    assert admin.put("/connectors/shop", profile(verification=SW_AS_HMAC)).status_code == 201

    response = admin.post(
        "/groups",
        {
            "name": "Svix-like",
            "connector": "shop",
            "function": "orders",
            "secret": "whsec_not*base64",
            "events": ["*"],
        },
    )

    assert response.status_code == 422
    assert [d["path"] for d in error_of(response)["details"]] == ["secret"]

"""Receiving: every shipped connector end to end, and every way a delivery can be refused."""

from __future__ import annotations

import json
import secrets
import urllib.parse
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.config import MiB
from gateway.connectors import sample_delivery, sample_events, shipped_profiles
from gateway.models import Delivery, Event

SECRETS = {
    # connector: a secret of the shape its provider uses
    "xemelgo": "xemelgo-test-secret-0123456789abcdef",
    "standard-webhooks": "whsec_dGVzdC1zZWNyZXQtZm9yLXN0YW5kYXJkLXdlYmhvb2tz",
}


def _group_for(group_factory: Any, connector: str, events: list[str]) -> dict[str, Any]:
    profile = shipped_profiles()[connector]
    function = profile.document["functions"][0]["name"]
    secret = SECRETS.get(connector, f"{connector}-test-secret-0123456789")
    return group_factory(connector=connector, function=function, events=events, secret=secret)


def _count(gw: Any, model: Any) -> int:
    with gw.db.read_session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _answered(gw: Any) -> list[tuple[str, int, str | None]]:
    """Each delivery's outcome, status and error code."""
    columns = select(Delivery.outcome, Delivery.status, Delivery.error_code)
    with gw.db.read_session() as session:
        return [tuple(row) for row in session.execute(columns)]


CASES = [
    (name, event)
    for name, profile in shipped_profiles().items()
    for event in sample_events(profile)
]


@pytest.mark.parametrize(("connector", "event_type"), CASES)
def test_each_shipped_connector_accepts_its_signed_sample(
    group_factory: Any, deliver: Any, admin: Any, connector: str, event_type: str
) -> None:
    group = _group_for(group_factory, connector, [event_type])
    body, headers = sample_delivery(shipped_profiles()[connector], event_type)

    response = deliver(group, body, headers)

    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["accepted"] >= 1
    assert answer["duplicates"] == 0
    events = admin.get(f"/events?group_id={group['id']}").get_json()["items"]
    assert {e["type"] for e in events} == {event_type}
    assert all(e["status"] == "pending" for e in events)
    assert all(e["delivery_id"] == answer["delivery_id"] for e in events)


def test_xtnd_delivery_with_three_notifications_gives_three_events(
    group_factory: Any, deliver: Any, admin: Any
) -> None:
    group = _group_for(group_factory, "xtnd", ["OrderPicked", "ProductCreated", "BalanceChanged"])
    body = json.dumps(
        {
            "Id": "6e249eebb818463086ae0dda6eeba7b2",
            "Attempt": 1,
            "Properties": {"NotificationId": "3b3fd4a6-36d5-46fe-8a3f-e73532529db3"},
            "Notifications": [
                {"Action": "OrderPicked", "Details": {"OrderNumber": "333841"}},
                {"Action": "ProductCreated", "Details": {"ProductNumber": "265A9AA"}},
                {"Action": "BalanceChanged", "Details": {"ProductNumber": "7495", "Balance": 43}},
            ],
        }
    ).encode()

    answer = deliver(group, body).get_json()

    assert answer["accepted"] == 3
    events = admin.get(f"/events?group_id={group['id']}").get_json()["items"]
    assert sorted(e["type"] for e in events) == ["BalanceChanged", "OrderPicked", "ProductCreated"]
    assert len({e["dedupe_key"] for e in events}) == 3


@pytest.mark.parametrize("connector", ["xemelgo", "stripe"])
def test_an_event_that_is_the_whole_body_is_stored_as_the_senders_json(
    group_factory: Any, deliver: Any, admin: Any, gw: Any, connector: str
) -> None:
    event_type = sample_events(shipped_profiles()[connector])[0]
    group = _group_for(group_factory, connector, [event_type])
    sample, headers = sample_delivery(shipped_profiles()[connector], event_type)
    # Key order, spacing and escapes as a sender might write them; none survives re-encoding.
    text = json.dumps(json.loads(sample), indent=3, ensure_ascii=False) + "\n"
    body = ("\ufeff" + text.replace("{", '{ "z\\u00e9": "\u00e9",', 1)).encode()

    answer = deliver(group, body, headers).get_json()

    (event,) = admin.get(f"/events?group_id={group['id']}").get_json()["items"]
    shown = admin.get(f"/events/{event['id']}").get_json()["payload"]
    assert answer["accepted"] == 1
    assert shown == json.loads(body.decode("utf-8-sig"))
    with gw.db.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT CAST(payload AS TEXT) FROM events").scalar_one()
    assert stored == text.replace("{", '{ "z\\u00e9": "\u00e9",', 1)


def test_a_form_encoded_github_delivery_is_verified_over_the_form_and_stores_its_json(
    group_factory: Any, deliver: Any, admin: Any
) -> None:
    group = _group_for(group_factory, "github", ["push"])
    sample, headers = sample_delivery(shipped_profiles()["github"], "push")
    body = urllib.parse.urlencode({"payload": sample.decode()}).encode()
    headers["Content-Type"] = "application/x-www-form-urlencoded"

    response = deliver(group, body, headers)

    assert response.status_code == 200, response.get_json()
    (event,) = admin.get(f"/events?group_id={group['id']}").get_json()["items"]
    assert admin.get(f"/events/{event['id']}").get_json()["payload"] == json.loads(sample)


def test_a_repeated_delivery_is_acknowledged_as_duplicate_and_stored_once(
    group_factory: Any, deliver: Any, admin: Any, gw: Any
) -> None:
    group = group_factory()
    body, headers = sample_delivery(shipped_profiles()["xemelgo"], "inventory.cycle_count")

    first = deliver(group, body, headers).get_json()
    second = deliver(group, body, headers).get_json()

    assert (first["accepted"], first["duplicates"]) == (1, 0)
    assert (second["accepted"], second["duplicates"]) == (0, 1)
    statuses = sorted(e["status"] for e in admin.get("/events").get_json()["items"])
    assert statuses == ["duplicate", "pending"]


def test_unregistered_event_types_are_stored_as_ignored(
    group_factory: Any, deliver: Any, admin: Any
) -> None:
    group = group_factory(events=["inventory.moved"])
    body, headers = sample_delivery(shipped_profiles()["xemelgo"], "inventory.cycle_count")

    answer = deliver(group, body, headers).get_json()

    assert (answer["accepted"], answer["ignored"]) == (0, 1)
    assert admin.get("/events").get_json()["items"][0]["status"] == "ignored"


@pytest.mark.parametrize(
    ("connector", "event_type", "body", "headers"),
    [
        # in range as written, out of datetime's range once converted to UTC
        (
            "generic",
            "order.created",
            {"event_type": "order.created", "event_time": "0001-01-01T00:00:00+14:00"},
            {},
        ),
        (
            "generic",
            "order.created",
            {"event_type": "order.created", "event_time": "9999-12-31T23:59:59-14:00"},
            {},
        ),
        (
            "shopify",
            "orders/create",
            {"id": 1},
            {
                "X-Shopify-Topic": "orders/create",
                "X-Shopify-Event-Id": "evt-time-edge",
                "X-Shopify-Triggered-At": "0001-01-01T00:00:00+01:00",
            },
        ),
    ],
    ids=["year 1 east of UTC", "year 9999 west of UTC", "shopify header"],
)
def test_a_time_beyond_the_calendar_in_utc_is_stored_without_one(
    group_factory: Any,
    deliver: Any,
    admin: Any,
    connector: str,
    event_type: str,
    body: dict[str, Any],
    headers: dict[str, str],
) -> None:
    group = _group_for(group_factory, connector, [event_type])

    response = deliver(group, json.dumps(body).encode(), headers)

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["accepted"] == 1
    events = admin.get(f"/events?group_id={group['id']}").get_json()["items"]
    assert [e["type"] for e in events] == [event_type]


@pytest.mark.parametrize(
    ("connector", "event_type", "header"),
    [
        ("generic", "order.created", "x-api-key"),  # api-key
        ("xilnex", "Complete Sales", "xilnex-webhook-signature"),  # the secret itself
    ],
)
def test_a_secret_sent_as_is_may_be_any_text_the_sender_sends_as_utf8(
    group_factory: Any, client: Any, connector: str, event_type: str, header: str
) -> None:
    secret = "clé-partagée-ключ-" + secrets.token_hex(8)
    profile = shipped_profiles()[connector]
    function = profile.document["functions"][0]["name"]
    group = group_factory(
        connector=connector, function=function, events=[event_type], secret=secret
    )
    body, headers = sample_delivery(shipped_profiles()[connector], event_type)
    # A WSGI server hands a header's bytes to the app decoded as Latin-1, whatever they are.
    sent = secret.encode().decode("latin-1")

    response = client.post(
        f"/hooks/{group['token']}",
        data=body,
        headers={**headers, "Content-Type": "application/json", header: sent},
    )
    wrong = client.post(
        f"/hooks/{group['token']}",
        data=body,
        headers={**headers, "Content-Type": "application/json", header: sent + "0"},
    )

    assert response.status_code == 200, response.get_json()
    assert wrong.status_code == 401


def test_put_is_accepted_like_post(group_factory: Any, deliver: Any) -> None:
    group = group_factory()
    body, headers = sample_delivery(shipped_profiles()["xemelgo"], "inventory.cycle_count")

    assert deliver(group, body, headers, method="PUT").status_code == 200


def test_credentials_are_removed_from_stored_headers(
    group_factory: Any, deliver: Any, admin: Any
) -> None:
    group = group_factory(
        connector="generic", function="webhooks", events=["order.created"], secret="k" * 24
    )
    body, headers = sample_delivery(shipped_profiles()["generic"], "order.created")

    deliver(group, body, {**headers, "Authorization": "Basic c2VjcmV0", "Cookie": "s=1"})

    event_id = admin.get("/events").get_json()["items"][0]["id"]
    stored = admin.get(f"/events/{event_id}").get_json()["delivery"]["headers"]
    assert "x-api-key" not in stored
    assert "authorization" not in stored
    assert "cookie" not in stored
    assert stored["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("header", "stored"),
    [
        # credentials a sender or a proxy may add, whatever the connector: never stored
        ("X-Auth-Token", False),
        ("X-Access-Token", False),
        ("Api-Key", False),
        ("ApiKey", False),
        ("X-Api-Token", False),
        ("X-Webhook-Secret", False),
        ("X-Webhook-Token", False),
        ("X-Gitlab-Token", False),
        ("Set-Cookie", False),
        ("Proxy-Authorization", False),
        ("Access-Token", False),
        ("Token", False),
        ("X-Client-Secret", False),
        ("X-Password", False),
        ("X-Refresh-Token", False),
        ("X-Session-Token", False),
        ("X-Goog-Api-Key", False),
        ("Ocp-Apim-Subscription-Key", False),
        ("X-Access-Key", False),
        ("X-Custom-Key", False),
        ("X-Client-Key", False),
        ("Private-Key", False),
        ("X-Auth", False),
        ("X-Api-Auth", False),
        # signatures are good for their own body only, and show why a delivery was refused
        ("X-Hub-Signature-256", True),
        ("Stripe-Signature", True),
        ("Webhook-Signature", True),
        ("X-Shopify-Hmac-Sha256", True),
        ("Webhook-Id", True),
        ("Idempotency-Key", True),  # names a delivery, grants nothing
        ("X-Key-Id", True),
    ],
)
def test_credential_headers_are_never_stored_and_signatures_are(
    group_factory: Any, deliver: Any, admin: Any, header: str, stored: bool
) -> None:
    group = group_factory(
        connector="generic", function="webhooks", events=["order.created"], secret="k" * 24
    )
    body, headers = sample_delivery(shipped_profiles()["generic"], "order.created")

    deliver(group, body, {**headers, header: "fake-value-0123456789"})

    event_id = admin.get("/events").get_json()["items"][0]["id"]
    kept = admin.get(f"/events/{event_id}").get_json()["delivery"]["headers"]
    assert (header.lower() in kept) is stored
    assert ("fake-value-0123456789" in kept.values()) is stored


@pytest.mark.parametrize(
    "value",
    [
        'say "hi" \\ back',
        "caf\xe9 \xbfqu\xe9?",  # as WSGI hands bytes past ASCII over: decoded as Latin-1
        "tab\there",
        "</script><!--",
    ],
)
def test_stored_headers_keep_each_value_as_received(
    group_factory: Any, deliver: Any, admin: Any, value: str
) -> None:
    group = group_factory()
    body, headers = sample_delivery(shipped_profiles()["xemelgo"], "inventory.cycle_count")

    deliver(group, body, {**headers, "X-Note": value})

    event_id = admin.get("/events").get_json()["items"][0]["id"]
    assert admin.get(f"/events/{event_id}").get_json()["delivery"]["headers"]["x-note"] == value


# --- refusals ----------------------------------------------------------------------------

CYCLE_COUNT = json.dumps(
    {"id": "d-1", "eventTimestamp": 1765572297000, "topic": "inventory.cycle_count", "data": {}}
).encode()


def _stale_stripe(group: dict[str, Any], gw: Any, body: bytes, offset: int) -> dict[str, str]:
    import time

    from gateway.verify import sign

    profile = gw.connectors.get("stripe")
    return sign(profile.verification, group["secret"], body, now=time.time() + offset)


REFUSALS = [
    # (case, request overrides, expected status, expected error code)
    ("unknown token", {"token": "x" * 32}, 404, "not_found"),
    ("missing signature", {"signed": False}, 401, "signature_missing"),
    ("wrong signature", {"secret": "another-secret-0123456789abcdef"}, 401, "signature_mismatch"),
    ("body over the limit", {"body": b'{"a":"' + b"x" * MiB + b'"}'}, 413, "payload_too_large"),
    ("invalid JSON", {"body": b'{"topic": '}, 400, "invalid_payload"),
    ("empty body", {"body": b""}, 400, "invalid_payload"),
    (
        "form content type",
        {"content_type": "application/x-www-form-urlencoded"},
        400,
        "unsupported_content_type",
    ),
    ("huge headers", {"headers": {"X-Padding": "p" * 20000}}, 400, "headers_too_large"),
    ("JSON without a topic", {"body": b'{"id": "1", "data": {}}'}, 400, "invalid_payload"),
]


@pytest.mark.parametrize(
    ("case", "overrides", "status", "code"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_refused_deliveries_get_the_contract_error_and_store_no_event(
    group_factory: Any,
    client: Any,
    gw: Any,
    case: str,
    overrides: dict[str, Any],
    status: int,
    code: str,
) -> None:
    from gateway.verify import sign

    group = group_factory()
    body = overrides.get("body", CYCLE_COUNT)
    headers = {"Content-Type": overrides.get("content_type", "application/json")}
    headers.update(overrides.get("headers", {}))
    if overrides.get("signed", True):
        profile = gw.connectors.get("xemelgo")
        headers.update(sign(profile.verification, overrides.get("secret", group["secret"]), body))

    response = client.post(
        f"/hooks/{overrides.get('token', group['token'])}", data=body, headers=headers
    )

    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert _count(gw, Event) == 0
    # A 400 or 401 to a known group leaves a trace (tests/integration/test_refused_deliveries.py).
    traces = [] if status in (404, 413) else [("refused", status, code)]
    assert _answered(gw) == traces


@pytest.mark.parametrize(
    ("case", "offset", "code"),
    [
        ("stale timestamp", -301, "timestamp_out_of_tolerance"),
        ("future timestamp", 301, "timestamp_out_of_tolerance"),
        ("inside the window", -299, None),
    ],
)
def test_stripe_timestamps_outside_the_tolerance_are_refused(
    group_factory: Any, client: Any, gw: Any, case: str, offset: int, code: str | None
) -> None:
    group = group_factory(
        connector="stripe",
        function="events",
        events=["customer.created"],
        secret="whsec_test_" + "0" * 24,
    )
    body, _ = sample_delivery(shipped_profiles()["stripe"], "customer.created")
    headers = {"Content-Type": "application/json", **_stale_stripe(group, gw, body, offset)}

    response = client.post(f"/hooks/{group['token']}", data=body, headers=headers)

    if code is None:
        assert response.status_code == 200
    else:
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == code
        assert _count(gw, Event) == 0


def test_the_expected_signature_is_never_revealed(group_factory: Any, client: Any, gw: Any) -> None:
    from gateway.verify import sign

    group = group_factory()
    right = sign(gw.connectors.get("xemelgo").verification, group["secret"], CYCLE_COUNT)

    response = client.post(
        f"/hooks/{group['token']}",
        data=CYCLE_COUNT,
        headers={"xemelgo-signature": "sha256=" + "0" * 64},
    )

    assert response.status_code == 401
    assert right["xemelgo-signature"].split("=", 1)[1] not in response.get_data(as_text=True)


def test_a_disabled_group_is_not_found(group_factory: Any, admin: Any, deliver: Any) -> None:
    group = group_factory()
    admin.patch(f"/groups/{group['id']}", {"active": False})

    assert deliver(group, CYCLE_COUNT).status_code == 404


def test_a_rotated_url_stops_working_and_the_new_one_works(
    group_factory: Any, admin: Any, deliver: Any
) -> None:
    group = group_factory()
    rotated = admin.post(f"/groups/{group['id']}/rotate-url").get_json()

    assert deliver(group, CYCLE_COUNT).status_code == 404
    new = {**group, "token": rotated["callback_url"].rsplit("/", 1)[1]}
    assert deliver(new, CYCLE_COUNT).status_code == 200


@pytest.mark.parametrize(
    ("window", "old_secret_status"),
    [
        (3600, 200),  # still inside the rotation window
        (0, 401),  # no window: the old secret stops at once
    ],
)
def test_a_rotated_secret_keeps_the_previous_one_for_its_window(
    group_factory: Any, admin: Any, deliver: Any, window: int, old_secret_status: int
) -> None:
    group = group_factory()
    new_secret = "rotated-secret-0123456789abcdef"
    admin.post(
        f"/groups/{group['id']}/rotate-secret",
        {"secret": new_secret, "previous_valid_for_s": window},
    )

    old = deliver(group, CYCLE_COUNT, secret=group["secret"])
    new = deliver(group, CYCLE_COUNT.replace(b"d-1", b"d-2"), secret=new_secret)

    assert old.status_code == old_secret_status
    assert new.status_code == 200


FIRST, SECOND, THIRD = (f"{n}-test-secret-0123456789abcdef" for n in ("first", "second", "third"))


def _rotate(secret: str, window: int | None = None) -> tuple[str, str, dict[str, Any]]:
    body: dict[str, Any] = {"secret": secret}
    if window is not None:
        body["previous_valid_for_s"] = window
    return "POST", "/rotate-secret", body


def _patch(secret: str) -> tuple[str, str, dict[str, Any]]:
    return "PATCH", "", {"secret": secret}


@pytest.mark.parametrize(
    ("changes", "accepted"),
    [
        # only the secret just replaced may keep a window, never the one before it
        ([_rotate(SECOND, 600), _rotate(THIRD, 0)], {THIRD}),
        ([_rotate(SECOND, 600), _rotate(THIRD)], {THIRD}),  # no window given is none
        ([_rotate(SECOND, 600), _rotate(THIRD, 600)], {SECOND, THIRD}),
        ([_rotate(SECOND), _rotate(THIRD, 600)], {SECOND, THIRD}),
        # a PATCH of the secret is a hard switch: it drops a rotation's window too
        ([_rotate(SECOND, 600), _patch(THIRD)], {THIRD}),
        ([_patch(SECOND), _patch(THIRD)], {THIRD}),
    ],
)
def test_only_the_secret_just_replaced_stays_accepted(
    group_factory: Any,
    admin: Any,
    deliver: Any,
    changes: list[tuple[str, str, dict[str, Any]]],
    accepted: set[str],
) -> None:
    group = group_factory(secret=FIRST)
    for method, suffix, body in changes:
        response = admin.call(method, f"/groups/{group['id']}{suffix}", json=body)
        assert response.status_code == 200, response.get_json()

    statuses = {
        secret: deliver(
            group, CYCLE_COUNT.replace(b"d-1", f"d-{n}".encode()), secret=secret
        ).status_code
        for n, secret in enumerate((FIRST, SECOND, THIRD))
    }

    assert statuses == {secret: 200 if secret in accepted else 401 for secret in statuses}
    view = admin.get(f"/groups/{group['id']}").get_json()
    assert (view["previous_secret_expires_at"] is not None) == (len(accepted) == 2)


def test_a_secret_key_other_than_the_one_secrets_were_stored_with_answers_503(
    group_factory: Any, settings: Any, admin: Any
) -> None:
    from cryptography.fernet import Fernet

    from gateway.services import Gateway
    from gateway.verify import sign
    from gateway.web import create_app

    group = group_factory()
    other_key = settings.with_overrides({"secret_key": Fernet.generate_key().decode()})
    other = Gateway(other_key)
    try:
        spec = other.connectors.get(group["connector"]).verification
        signed = sign(spec, group["secret"], CYCLE_COUNT)
        response = (
            create_app(gateway=other)
            .test_client()
            .post(
                f"/hooks/{group['token']}",
                data=CYCLE_COUNT,
                headers={"Content-Type": "application/json", **signed},
            )
        )
    finally:
        other.close()

    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "secret_key_mismatch"
    assert response.headers["Retry-After"]
    assert admin.get("/events").get_json()["items"] == []


def test_an_unreachable_database_answers_503_so_the_sender_retries(tmp_path: Any) -> None:
    from cryptography.fernet import Fernet

    from gateway.config import Settings
    from gateway.services import Gateway
    from gateway.web import create_app
    from tests.postgres import _free_port

    settings = Settings(
        instance_path=tmp_path,
        database_url=f"postgresql+psycopg://nobody@127.0.0.1:{_free_port()}/none",
        admin_token="t" * 20,
        secret_key=Fernet.generate_key().decode(),
    )
    client = create_app(gateway=Gateway(settings)).test_client()

    response = client.post("/hooks/" + "a" * 32, data=CYCLE_COUNT)

    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "database_unavailable"
    assert response.headers["Retry-After"]
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200
    metrics = client.get("/metrics")  # the counters still, which an outage makes matter most
    assert metrics.status_code == 200
    assert "gateway_database_up 0.0" in metrics.get_data(as_text=True)
    assert 'outcome="database_unavailable"' in metrics.get_data(as_text=True)

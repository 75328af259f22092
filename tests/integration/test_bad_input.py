"""Input the database cannot hold or Python cannot parse gets a clear 4xx, never a 5xx.

Each row is something the fuzzers found answering 500 (or 503, which makes a sender retry
forever). PostgreSQL text cannot hold U+0000 and its integers have ranges; ``str.isdigit``
takes digits ``int`` refuses; deeply nested JSON and JMESPath exhaust Python's recursion.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from gunicorn.http.errors import ChunkMissingTerminator, InvalidChunkSize, NoMoreData
from werkzeug.exceptions import ClientDisconnected

from gateway.connectors import shipped_profiles

DEEP_EXPRESSION = "(" * 1500 + "a" + ")" * 1500
MAPPING = {
    "upserts": [{"key": "k", "object": "A", "external_id_field": "B", "external_id": "payload.id"}]
}


def deep_mapping() -> dict[str, Any]:
    return {"upserts": [{**MAPPING["upserts"][0], "external_id": DEEP_EXPRESSION}]}


def deep_profile() -> dict[str, Any]:
    profile = json.loads(json.dumps(shipped_profiles()["generic"].document))
    profile["name"] = "deep-custom"
    profile["events"]["type"] = {"jmespath": DEEP_EXPRESSION}
    return profile


def assert_error(response: Any, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["message"]
    if code is not None:
        assert error["code"] == code


@pytest.mark.parametrize(
    "path",
    [
        "/groups/a%00b",
        "/webhooks/a%00b",
        "/mappings/a%00b",
        "/mappings/a%00b/versions",
        "/records/Item__c/a%00b",
        "/events?group_id=a%00b",
        "/events?type=%00",
        "/groups?cursor=%00",
    ],
)
def test_nul_characters_in_paths_and_queries_are_400(admin: Any, path: str) -> None:
    assert_error(admin.get(path), 400, "nul_character")


def test_a_mapping_cannot_be_named_with_a_nul_character(admin: Any) -> None:
    assert_error(admin.put("/mappings/a%00b", MAPPING), 400, "nul_character")


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/groups?limit=%C2%B2", 400, "invalid_limit"),  # '²' passes str.isdigit
        ("/groups?limit=" + "9" * 5000, 400, "invalid_limit"),  # past int()'s digits
        ("/events?limit=%C2%B2", 400, "invalid_limit"),
        ("/events?cursor=99999999999999999999999", 400, "invalid_cursor"),  # past bigint
        ("/events?cursor=%C2%B2", 400, "invalid_cursor"),
        ("/events/%C2%B2", 404, "not_found"),
        ("/mappings/items?version=%C2%B2", 400, "invalid_version"),
        ("/mappings/items?version=2147483648", 400, "invalid_version"),  # past integer
        ("/mappings/items?version=" + "9" * 5000, 400, "invalid_version"),  # past int()'s digits
    ],
)
def test_numbers_that_are_not_ascii_or_do_not_fit_are_refused(
    admin: Any, path: str, status: int, code: str
) -> None:
    assert_error(admin.get(path), status, code)


@pytest.mark.parametrize(
    "change",
    [
        {"name": "a\x00b"},
        {"external_id": "\x00"},
        {"events": ["inventory.moved\x00"]},
        {"target": "salesforce:" + "a" * 100},  # longer than the column
    ],
)
def test_group_fields_the_database_cannot_hold_are_422(
    admin: Any, group_factory: Any, change: dict[str, Any]
) -> None:
    group = group_factory()

    assert_error(admin.patch(f"/groups/{group['id']}", change), 422, "validation_failed")
    assert_error(admin.post("/groups", {**group, **change}), 422, "validation_failed")


def test_a_long_value_refused_is_not_repeated_whole(admin: Any, group_factory: Any) -> None:
    """A two-megabyte name would otherwise come back, and land in the client's logs, whole."""
    group = group_factory()
    name = "n" * 100_000

    response = admin.patch(f"/groups/{group['id']}", {"name": name})

    assert_error(response, 422, "validation_failed")
    [detail] = response.get_json()["error"]["details"]
    assert detail["message"] == f'"{"n" * 60}…" (100000 characters) is longer than 200 characters'
    assert len(response.data) < 1000


def profile(**changes: Any) -> dict[str, Any]:
    """The generic connector's profile under a new name, with ``changes``."""
    document = json.loads(json.dumps(shipped_profiles()["generic"].document))
    return {**document, "name": "custom", **changes}


@pytest.mark.parametrize(
    ("method", "path", "body", "where", "message"),
    [
        ("POST", "/groups", {"name": None}, "name", "must be a string, not null"),
        ("PATCH", "/groups/{id}", {"active": "yes"}, "active", 'must be true or false, not "yes"'),
        ("PATCH", "/groups/{id}", {"events": [True]}, "events[0]", "must be a string, not true"),
        ("PATCH", "/groups/{id}", {"colour": "blue"}, "$", '"colour" is not a known key'),
        (
            "POST",
            "/webhooks/{template}/clone",
            {"label": {"a": 1}, "events": []},
            "label",
            'must be a string, not {"a": 1}',
        ),
        (
            "POST",
            "/webhooks/{template}/clone",
            {"label": "x", "events": [], "mapping": False},
            "mapping",
            "false matches none of the allowed forms",
        ),
        ("POST", "/webhooks/{template}/clone", {"label": "x"}, "$", '"events" is required'),
        ("POST", "/mappings/m/preview", {"last": 0}, "last", "0 is less than the minimum of 1"),
        (
            "POST",
            "/mappings/m/preview",
            {"event_id": None},
            "event_id",
            "must be a string or a whole number, not null",
        ),
        ("POST", "/mappings/m/preview", {"document": []}, "document", "must be an object, not []"),
        ("POST", "/events/replay", {"limit": 1.5}, "limit", "must be a whole number, not 1.5"),
        (
            "POST",
            "/events/replay",
            {"status": {"a": None}},
            "status",
            '{"a": null} matches none of the allowed forms',
        ),
        ("POST", "/connectors", profile(title=None), "title", "must be a string, not null"),
        (
            "POST",
            "/connectors",
            profile(verification={"scheme": "md5"}),
            "verification.scheme",
            '"md5" is not one of "hmac", "stripe", "standard-webhooks", "api-key",'
            ' "header-secret", "any-of" or "none"',
        ),
        (
            "PUT",
            "/targets/salesforce/credentials",
            {"SALESFORCE_COLOUR": "blue"},
            "$",
            'the key "SALESFORCE_COLOUR" is not one of ',
        ),
    ],
)
def test_request_body_problems_name_values_as_json_does(
    admin: Any,
    group_factory: Any,
    method: str,
    path: str,
    body: dict[str, Any],
    where: str,
    message: str,
) -> None:
    """null, true, false, "text" and {"a": 1}: what the admin sent, not Python's None or True."""
    group = group_factory()
    path = path.format(id=group["id"], template=group["template_webhook_id"])

    response = admin.call(method, path, json=body)

    assert_error(response, 422, "validation_failed")
    details = [(d["path"], d["message"]) for d in response.get_json()["error"]["details"]]
    assert any(p == where and m.startswith(message) for p, m in details), details
    assert not any(word in m for _, m in details for word in ("None", "True", "False", "'"))


@pytest.mark.parametrize(
    "change",
    [
        {"label": "a\x00b"},
        {"mapping": "a\x00b"},
        {"mapping": {"name": "items", "version": 2**40}},
    ],
)
def test_webhook_record_fields_the_database_cannot_hold_are_422(
    admin: Any, group_factory: Any, change: dict[str, Any]
) -> None:
    group = group_factory()
    body = {"label": "Moves", "events": [], **change}

    response = admin.post(f"/webhooks/{group['template_webhook_id']}/clone", body)

    assert_error(response, 422, "validation_failed")


def test_replay_filters_with_nul_characters_are_422(admin: Any) -> None:
    assert_error(admin.post("/events/replay", {"group_id": "\x00"}), 422, "validation_failed")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/groups", b"[" * 100_000),
        ("PUT", "/mappings/deep", json.dumps(deep_mapping()).encode()),
        (
            "POST",
            "/mappings/deep/preview",
            json.dumps({"event_type": "a", "payload": {}, "document": deep_mapping()}).encode(),
        ),
        ("POST", "/connectors", json.dumps(deep_profile()).encode()),
    ],
    ids=["json body", "mapping expression", "previewed expression", "connector expression"],
)
def test_input_nested_too_deeply_is_400(admin: Any, method: str, path: str, body: bytes) -> None:
    response = admin.call(method, path, data=body, content_type="application/json")

    assert_error(response, 400, "too_deeply_nested")


def test_a_too_deeply_nested_filter_is_400(admin: Any, group_factory: Any) -> None:
    group = group_factory()
    body = {"label": "Deep", "events": [], "filter": DEEP_EXPRESSION}

    response = admin.post(f"/webhooks/{group['template_webhook_id']}/clone", body)

    assert_error(response, 400, "too_deeply_nested")


LONE_SURROGATE = "\\ud800"  # half of a UTF-16 pair, as a JSON escape: not a character
UPSERTS = json.dumps(MAPPING["upserts"])
LONE_PROFILE = json.dumps(
    {
        "name": "lone",
        "functions": [{"name": "orders", "events": ["order.paid"]}],
        "verification": {"scheme": "hmac", "header": "x-lone-signature"},
        "events": {"type": {"jmespath": "kind"}},
    }
)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        (
            "POST",
            "/groups",
            '{"name": "%s", "connector": "xemelgo", "function": "webhooks", "events": []}',
        ),
        ("PATCH", "/groups/{group}", '{"name": "Moves %s"}'),
        ("POST", "/groups/{group}/rotate-secret", '{"secret": "%s-rotated-secret-0123456789"}'),
        ("POST", "/webhooks/{template}/clone", '{"label": "%s", "events": []}'),
        ("PUT", "/mappings/items", '{"description": "%s", "upserts": ' + UPSERTS + "}"),
        ("POST", "/connectors", '{"title": "%s", ' + LONE_PROFILE[1:]),
        ("POST", "/events/replay", '{"type": "%s"}'),
    ],
)
def test_a_lone_surrogate_in_an_admin_body_is_400(
    admin: Any, group_factory: Any, method: str, path: str, body: str
) -> None:
    """Neither database can store it: it is no text UTF-8 can write."""
    group = group_factory()
    path = path.format(group=group["id"], template=group["template_webhook_id"])

    response = admin.call(method, path, data=body % LONE_SURROGATE, content_type="application/json")

    assert_error(response, 400, "invalid_json")
    assert "surrogate" in response.get_json()["error"]["message"]


def test_a_surrogate_pair_is_the_character_it_encodes(admin: Any, group_factory: Any) -> None:
    group = group_factory()

    response = admin.call(
        "PATCH",
        f"/groups/{group['id']}",
        data='{"name": "Moves \\ud83d\\ude9a"}',
        content_type="application/json",
    )

    assert response.status_code == 200
    assert admin.get(f"/groups/{group['id']}").get_json()["name"] == "Moves \U0001f69a"


def test_a_callback_token_with_a_nul_character_is_not_found(client: Any) -> None:
    assert_error(client.post("/hooks/abc%00def", data=b"{}"), 404, "not_found")


# --- receiving ---------------------------------------------------------------------------

STRIPE_SECRET = "whsec_bad_input_" + "0" * 24


@pytest.mark.parametrize(
    ("event", "content_type", "code"),
    [
        ({"id": "evt_1", "type": "customer.\x00created"}, None, "invalid_payload"),
        ({"id": "evt_\x001", "type": "customer.created"}, None, "invalid_payload"),
        ({"id": "evt_1", "type": "customer.created"}, "application/json; charset=\x00", None),
        ({"id": "evt_1", "type": "customer.created"}, "application/json; " + "p=1;" * 60, None),
    ],
    ids=["NUL in the type", "NUL in the id", "NUL in the content type", "long content type"],
)
def test_deliveries_the_database_cannot_hold_are_400_and_store_nothing(
    group_factory: Any,
    deliver: Any,
    admin: Any,
    event: dict[str, Any],
    content_type: str | None,
    code: str | None,
) -> None:
    group = group_factory(
        connector="stripe", function="events", events=["customer.created"], secret=STRIPE_SECRET
    )

    response = deliver(
        group, json.dumps(event).encode(), content_type=content_type or "application/json"
    )

    assert_error(response, 400, code or "unsupported_content_type")
    assert admin.get("/events").get_json()["items"] == []


@pytest.mark.parametrize(
    "stamp",
    ["9" * 4000, "9" * 5000, "0" * 13],
    ids=["past a float", "past int()'s digits", "more digits than an epoch"],
)
def test_a_timestamp_too_long_to_be_one_is_401_timestamp_invalid(
    group_factory: Any, deliver: Any, stamp: str
) -> None:
    group = group_factory(
        connector="stripe", function="events", events=["customer.created"], secret=STRIPE_SECRET
    )
    body = b'{"id": "evt_1", "type": "customer.created"}'
    forged = {"Stripe-Signature": f"t={stamp},v1={'ab' * 32}"}

    response = deliver(group, body, forged, signed=False)

    assert_error(response, 401, "timestamp_invalid")


class _Unreadable:
    """A request body whose reading fails as the WSGI server makes it fail."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def read(self, size: int = -1) -> bytes:
        raise self.error


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (_Unreadable(NoMoreData(b"")), "body_incomplete"),
        (_Unreadable(InvalidChunkSize(b"zz")), "body_malformed"),
        (_Unreadable(ChunkMissingTerminator(b"xx")), "body_malformed"),
        (_Unreadable(ClientDisconnected()), "body_incomplete"),
        (_Unreadable(ConnectionResetError()), "body_incomplete"),
        (io.BytesIO(b'{"id": "d-1"'), "body_incomplete"),  # shorter than its Content-Length
    ],
    ids=[
        "gunicorn: cut short",
        "gunicorn: bad chunk size",
        "gunicorn: bad chunk terminator",
        "werkzeug: client gone",
        "connection reset",
        "fewer bytes than declared",
    ],
)
def test_a_body_the_server_cannot_read_whole_is_400_and_stores_nothing(
    client: Any, group_factory: Any, admin: Any, body: Any, code: str
) -> None:
    group = group_factory()

    response = client.post(
        f"/hooks/{group['token']}",
        headers={"Content-Type": "application/json"},
        environ_overrides={
            "wsgi.input": body,
            "wsgi.input_terminated": True,  # as gunicorn says: read to the end, not a length
            "CONTENT_LENGTH": "100",
        },
    )

    assert_error(response, 400, code)
    assert admin.get("/events").get_json()["items"] == []


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize(
    ("method", "path"), [("PUT", "/mappings/big"), ("POST", "/mappings/big/preview")]
)
def test_an_admin_body_past_four_times_the_delivery_limit_is_413(
    admin: Any, gw: Any, method: str, path: str, chunked: bool
) -> None:
    """Checking a mapping costs the web process about a second a megabyte."""
    limit = 4 * gw.settings.max_body_bytes
    body = json.dumps({"description": "x" * limit}).encode()
    headers = {**admin.headers, "Content-Type": "application/json"}
    sent: dict[str, Any] = {"data": body}
    if chunked:  # no length given: as gunicorn hands over a chunked body
        headers["Transfer-Encoding"] = "chunked"
        sent = {
            "input_stream": io.BytesIO(body),
            "environ_overrides": {"wsgi.input_terminated": True},
        }
    response = admin.client.open(f"/api/v1{path}", method=method, headers=headers, **sent)
    assert_error(response, 413, "payload_too_large")

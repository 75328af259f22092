"""Intake: one raw delivery in, its events out, each with a type, a stable dedupe key and a time."""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from datetime import UTC, datetime
from typing import Any

import jmespath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import intake
from gateway.connectors import (
    Profile,
    sample_delivery,
    sample_events,
    shipped_profiles,
    validate_profile,
)
from gateway.errors import InvalidPayload, UnsupportedContentType
from gateway.intake import FORM, IncomingEvent, split_delivery

SHIPPED = shipped_profiles()
#: Every dedupe key is a provider id or a SHA-256 in hex.
KEY = re.compile(r"id:.+|sha256:[0-9a-f]{64}", re.DOTALL)


def content_hash(value: Any) -> str:
    """The documented content key, computed independently of the code under test."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def split(
    connector: str | Profile | dict[str, Any],
    body: Any,
    headers: dict[str, str] | None = None,
    content_type: str | None = "application/json",
) -> list[IncomingEvent]:
    """Split ``body`` (bytes as they are, anything else as JSON) for a connector or spec."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    spec = SHIPPED[connector] if isinstance(connector, str) else connector
    return split_delivery(spec, headers or {}, raw, content_type)


def sample(connector: str, event_type: str) -> tuple[bytes, dict[str, str]]:
    """A sample delivery with its headers lower-cased, as the receive view passes them."""
    body, headers = sample_delivery(SHIPPED[connector], event_type)
    return body, {name.lower(): value for name, value in headers.items()}


def xtnd_delivery(*actions: str, notification_id: str = "nid-test-0001") -> dict[str, Any]:
    return {
        "Id": "delivery-test-0001",
        "Attempt": 1,
        "Properties": {"NotificationId": notification_id},
        "Notifications": [
            {"Action": action, "Details": {"OrderNumber": f"T-{n}"}}
            for n, action in enumerate(actions)
        ],
    }


def xemelgo_delivery(delivery_id: str = "attempt-1", **data: Any) -> dict[str, Any]:
    return {
        "id": delivery_id,
        "eventTimestamp": 1765572297000,
        "topic": "inventory.moved",
        "data": data or {"itemId": "inv-test-1"},
    }


# --- every sample --------------------------------------------------------------------------

ALL_SAMPLES = [
    (name, event) for name, profile in SHIPPED.items() for event in sample_events(profile)
]


@pytest.mark.parametrize(("connector", "event_type"), ALL_SAMPLES)
def test_every_sample_splits_into_events_of_its_type(connector: str, event_type: str) -> None:
    body, headers = sample(connector, event_type)
    events = split_delivery(SHIPPED[connector], headers, body, headers["content-type"])
    assert events
    assert {event.type for event in events} == {event_type}


@pytest.mark.parametrize(("connector", "event_type"), ALL_SAMPLES)
def test_the_same_delivery_gives_the_same_keys(connector: str, event_type: str) -> None:
    body, headers = sample(connector, event_type)
    first, second = (split_delivery(SHIPPED[connector], headers, body, None) for _ in range(2))
    assert [e.dedupe_key for e in first] == [e.dedupe_key for e in second]
    assert len({e.dedupe_key for e in first}) == len(first)  # no two events of a delivery collide
    assert all(KEY.fullmatch(e.dedupe_key) for e in first)


@pytest.mark.parametrize(
    ("connector", "event_type", "expected"),
    [
        # no id in the body: the content is the identity
        ("xilnex", "Complete Sales", lambda body, headers: [content_hash(body)]),
        # the id names a delivery attempt: topic, time and data are hashed instead
        (
            "xemelgo",
            "inventory.moved",
            lambda body, headers: [
                content_hash([body["topic"], body["eventTimestamp"], body["data"]])
            ],
        ),
        # three notifications under one NotificationId, told apart by position
        (
            "xtnd",
            "OrderPicked",
            lambda body, headers: [
                f"id:{body['Properties']['NotificationId']}#{n}" for n in range(3)
            ],
        ),
        (
            "xtnd",
            "OrderCreated",
            lambda body, headers: ["id:6f1d2c3b-0000-4a5b-9c8d-7e6f00000001#0"],
        ),
        ("generic", "order.created", lambda body, headers: [content_hash(body)]),
        ("stripe", "payment_intent.succeeded", lambda body, headers: [f"id:{body['id']}"]),
        ("stripe", "customer.created", lambda body, headers: ["id:evt_1TestOnly0000000000000002"]),
        # the id is in a header, fresh for each sample delivery
        ("github", "push", lambda body, headers: [f"id:{headers['x-github-delivery']}"]),
        ("shopify", "orders/create", lambda body, headers: [f"id:{headers['x-shopify-event-id']}"]),
        (
            "standard-webhooks",
            "user.created",
            lambda body, headers: [f"id:{headers['webhook-id']}"],
        ),
    ],
)
def test_dedupe_keys_of_samples(connector: str, event_type: str, expected: Any) -> None:
    body, headers = sample(connector, event_type)
    found = [event.dedupe_key for event in split_delivery(SHIPPED[connector], headers, body, None)]
    assert found == expected(json.loads(body), headers)


# --- dedupe keys ------------------------------------------------------------------------------


def test_xtnd_notifications_become_events_in_order() -> None:
    events = split("xtnd", xtnd_delivery("OrderReserved", "OrderPicked", "OrderPicked"))
    assert [(e.type, e.dedupe_key) for e in events] == [
        ("OrderReserved", "id:nid-test-0001#0"),
        ("OrderPicked", "id:nid-test-0001#1"),
        ("OrderPicked", "id:nid-test-0001#2"),
    ]
    assert events[1].payload == {"Action": "OrderPicked", "Details": {"OrderNumber": "T-1"}}


def test_xtnd_retry_of_a_delivery_repeats_its_keys() -> None:
    first = xtnd_delivery("OrderPicked", "BalanceChanged")
    retry = {**first, "Id": "delivery-test-0002", "Attempt": 2}
    assert [e.dedupe_key for e in split("xtnd", first)] == [
        e.dedupe_key for e in split("xtnd", retry)
    ]


def test_xemelgo_retry_with_a_new_attempt_id_is_the_same_event() -> None:
    first = split("xemelgo", xemelgo_delivery("attempt-1"))
    retry = split("xemelgo", xemelgo_delivery("attempt-2"))
    assert first[0].dedupe_key == retry[0].dedupe_key


def test_xemelgo_events_with_other_data_are_different_events() -> None:
    one = split("xemelgo", xemelgo_delivery(itemId="inv-test-1"))
    other = split("xemelgo", xemelgo_delivery(itemId="inv-test-2"))
    assert one[0].dedupe_key != other[0].dedupe_key


def test_content_keys_ignore_key_order_and_whitespace() -> None:
    compact = b'{"EventName":"Create Sales","Data":{"a":1,"b":2}}'
    spaced = b'{ "Data": {"b": 2, "a": 1},\n  "EventName": "Create Sales" }'
    assert split("xilnex", compact)[0].dedupe_key == split("xilnex", spaced)[0].dedupe_key


def test_content_keys_hash_non_ascii_text_as_utf8() -> None:
    body = {"EventName": "Create Sales", "Data": {"customer": "Zoë Ürün 测试"}}
    assert split("xilnex", body)[0].dedupe_key == content_hash(body)


@pytest.mark.parametrize(
    "value",
    [
        1e-05,  # json: 1e-05, a faster encoder: 0.00001
        -2.5e-07,  # json: -2.5e-07, a faster encoder: -2.5e-7
        0.0001,
        1e16,
        1.7976931348623157e308,
        5e-324,
        -0.0,
        10.00001,
        2**64,  # past what a faster encoder takes
        -(2**63) - 1,
        "\ud800",  # a lone surrogate escape
        "0.00001 1e-5 \x00\x1f\x7f\u2028",
    ],
)
def test_content_keys_hash_json_s_canonical_text_for_every_value(value: Any) -> None:
    """A key must not change from one release to the next: numbers, integers past 64 bits and
    lone surrogates are hashed as json writes them, like everything else."""
    body = {"EventName": "Create Sales", "Data": {"value": value, "list": [value, {"v": value}]}}
    assert split("xilnex", body)[0].dedupe_key == content_hash(body)


CANONICAL_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(min_value=-1e-3, max_value=1e-3)
    | st.text(st.characters(exclude_categories=()), max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(st.characters(exclude_categories=()), max_size=4), children)
    ),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(CANONICAL_VALUES)
def test_content_keys_of_any_json_hash_its_canonical_text(value: Any) -> None:
    body = {"EventName": "Create Sales", "Data": value}
    assert split("xilnex", body)[0].dedupe_key == content_hash(body)


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ({"x-github-delivery": "guid-test-1"}, "id:guid-test-1"),  # the provider's id
        ({}, "content"),  # no id header: fall back to the content, so a resend still matches
        ({"x-github-delivery": ""}, "content"),  # an empty id is no id
    ],
)
def test_header_ids(headers: dict[str, str], key: str) -> None:
    body = {"zen": "Test data only."}
    events = split("github", body, {"x-github-event": "ping", **headers})
    assert events[0].dedupe_key == (content_hash(body) if key == "content" else key)


@pytest.mark.parametrize(
    ("event_id", "key"),
    [
        ("evt_test_1", "id:evt_test_1"),  # a string id as it is
        (42, "id:42"),  # a number as JSON
        ("x" * 252, "id:" + "x" * 252),  # 255 characters still fit
        ("x" * 253, "long"),  # 256 do not: hashed
    ],
)
def test_provider_ids(event_id: Any, key: str) -> None:
    events = split("stripe", {"id": event_id, "type": "customer.created"})
    expected = "sha256:" + hashlib.sha256(f"id:{event_id}".encode()).hexdigest()
    assert events[0].dedupe_key == (expected if key == "long" else key)
    assert len(events[0].dedupe_key) <= intake.MAX_KEY_LENGTH


# --- types -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("connector", "headers", "body", "event_type"),
    [
        ("github", {"x-github-event": "push"}, {"ref": "refs/heads/main"}, "push"),
        # the header wins even when the body has a field of the same name
        ("github", {"x-github-event": "issues"}, {"action": "opened", "type": "x"}, "issues"),
        ("shopify", {"x-shopify-topic": "orders/paid"}, {"id": 1}, "orders/paid"),
        # a body that is not an object is still a payload when the type is in a header
        ("shopify", {"x-shopify-topic": "app/uninstalled"}, [1, 2], "app/uninstalled"),
    ],
)
def test_types_from_headers(
    connector: str, headers: dict[str, str], body: Any, event_type: str
) -> None:
    events = split(connector, body, headers)
    assert [(e.type, e.payload) for e in events] == [(event_type, body)]


def test_open_catalog_events_pass_through() -> None:
    assert (
        split("xilnex", {"EventName": "Xilnex.Sales.Complete"})[0].type == "Xilnex.Sales.Complete"
    )


# --- times -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("connector", "headers", "body", "occurred_at"),
    [
        # epoch milliseconds in the body
        ("xemelgo", {}, xemelgo_delivery(), datetime(2025, 12, 12, 20, 44, 57, tzinfo=UTC)),
        # epoch seconds in the body
        (
            "stripe",
            {},
            {"id": "evt_t", "type": "customer.created", "created": 1767225600},
            datetime(2026, 1, 1, tzinfo=UTC),
        ),
        # ISO 8601 with an offset, converted to UTC
        (
            "shopify",
            {
                "x-shopify-topic": "orders/create",
                "x-shopify-triggered-at": "2026-02-01T10:15:00-05:00",
            },
            {},
            datetime(2026, 2, 1, 15, 15, tzinfo=UTC),
        ),
        # more than microsecond precision is cut, not refused
        (
            "shopify",
            {
                "x-shopify-topic": "orders/create",
                "x-shopify-triggered-at": "2026-02-01T10:15:00.123456789Z",
            },
            {},
            datetime(2026, 2, 1, 10, 15, 0, 123456, tzinfo=UTC),
        ),
        # epoch seconds in a header
        (
            "standard-webhooks",
            {"webhook-timestamp": "1767225600"},
            {"type": "user.created"},
            datetime(2026, 1, 1, tzinfo=UTC),
        ),
        # a naive ISO time is taken as UTC
        (
            "generic",
            {},
            {"event_type": "user.created", "event_time": "2026-03-14T09:26:53"},
            datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC),
        ),
        # no timestamp in the profile
        ("github", {"x-github-event": "push"}, {}, None),
        # absent, unreadable or absurd times are not a reason to refuse the event
        ("xemelgo", {}, {"topic": "asset.moved"}, None),
        ("xemelgo", {}, {**xemelgo_delivery(), "eventTimestamp": "soon"}, None),
        ("xemelgo", {}, {**xemelgo_delivery(), "eventTimestamp": True}, None),
        ("xemelgo", {}, {**xemelgo_delivery(), "eventTimestamp": 10**30}, None),
        ("generic", {}, {"event_type": "user.created", "event_time": 20260314}, None),
        # in UTC past the calendar's first or last day
        ("generic", {}, {"event_type": "a", "event_time": "0001-01-01T00:00:00+01:00"}, None),
        ("generic", {}, {"event_type": "a", "event_time": "9999-12-31T23:59:59-01:00"}, None),
        (
            "shopify",
            {"x-shopify-topic": "orders/create", "x-shopify-triggered-at": "yesterday"},
            {},
            None,
        ),
    ],
)
def test_occurred_at(
    connector: str, headers: dict[str, str], body: Any, occurred_at: datetime | None
) -> None:
    assert split(connector, body, headers)[0].occurred_at == occurred_at


# --- content types -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        None,  # senders that say nothing are parsed anyway
        "",
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",  # media types are case-insensitive
        "application/vnd.api+json",  # any +json suffix
        "application/cloudevents+json; charset=utf-8",
    ],
)
def test_json_content_types_are_accepted(content_type: str | None) -> None:
    assert split("xilnex", {"EventName": "Create Sales"}, content_type=content_type)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=test-boundary",
        "application/xml",
        "text/xml",
        "text/html; charset=utf-8",
        "text/plain",
    ],
)
def test_other_content_types_are_refused_by_name(content_type: str) -> None:
    with pytest.raises(UnsupportedContentType) as caught:
        split("xilnex", {"EventName": "Create Sales"}, content_type=content_type)
    assert caught.value.code == "unsupported_content_type"
    assert content_type in caught.value.message


def test_a_profile_may_accept_more_content_types() -> None:
    profile = validate_profile(
        {
            "name": "plain-sender",
            "title": "A sender that labels JSON as text",
            "functions": [{"name": "main", "events": ["ping"]}],
            "verification": {"scheme": "none"},
            "content_types": ["text/plain"],
            "events": {"type": {"jmespath": "kind"}},
        }
    )
    assert (
        split(profile, {"kind": "ping"}, content_type="text/plain; charset=utf-8")[0].type == "ping"
    )
    assert split(profile, {"kind": "ping"}, content_type="application/json")[0].type == "ping"
    with pytest.raises(UnsupportedContentType):
        split(profile, {"kind": "ping"}, content_type="text/html")


def form(**fields: str) -> bytes:
    """A form-encoded body, as GitHub sends when its webhook's content type is the form."""
    return urllib.parse.urlencode(fields).encode()


def test_a_form_encoded_github_delivery_carries_the_same_event_as_its_json() -> None:
    body, headers = sample("github", "push")

    (from_form,) = split("github", form(payload=body.decode()), headers, content_type=FORM)
    (from_json,) = split("github", body, headers)

    assert from_form == from_json
    assert from_form.payload_json == body.decode()  # stored as the sender's JSON, not the form


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (form(other="{}"), "no 'payload' fields"),
        (b"payload=%7B%7D&payload=%7B%7D", "2 'payload' fields"),
        (b"payload=%ff", "not a valid form"),  # not UTF-8 once unquoted
        (b"payload", "not a valid form"),  # a field without "="
        (form(payload="not json"), "not valid JSON"),
        (form(payload=""), "not valid JSON"),
    ],
)
def test_a_form_without_one_json_payload_field_is_refused(body: bytes, message: str) -> None:
    _, headers = sample("github", "push")
    with pytest.raises(InvalidPayload) as caught:
        split("github", body, headers, content_type=f"{FORM}; charset=utf-8")
    assert message in caught.value.message


def test_a_form_is_parsed_as_json_when_the_profile_names_no_form_field() -> None:
    profile = validate_profile(
        {
            "name": "form-labelled",
            "title": "A sender that labels JSON as a form",
            "functions": [{"name": "main", "events": ["ping"]}],
            "verification": {"scheme": "none"},
            "content_types": [FORM],
            "events": {"type": {"jmespath": "kind"}},
        }
    )
    assert split(profile, {"kind": "ping"}, content_type=FORM)[0].type == "ping"


# --- bad input ---------------------------------------------------------------------------------


def bad(
    why: str, connector: str, body: Any, message: str, headers: dict[str, str] | None = None
) -> Any:
    """One row: what is sent, and the words the 400 must contain."""
    return pytest.param(connector, body, headers or {}, message, id=why)


@pytest.mark.parametrize(
    ("connector", "body", "headers", "message"),
    [
        bad("empty body", "xilnex", b"", "empty body"),
        bad("not UTF-8", "xilnex", b'{"EventName": "\xff"}', "not valid UTF-8 (byte 15)"),
        bad("not JSON", "xilnex", b'{"EventName": }', "line 1 column 15 (char 14)"),
        bad("truncated JSON", "xilnex", b'{"EventName": "Create', "not valid JSON"),
        bad(
            "NaN is not JSON", "xilnex", b'{"EventName": "x", "n": NaN}', "NaN is not a JSON number"
        ),
        bad("infinity by overflow", "xilnex", b'{"EventName": "x", "n": 1e999}', "out of range"),
        bad("an integer too long to convert", "xilnex", b"1" * 5000, "not valid JSON"),
        bad("nested deeper than can be processed", "xilnex", b"[" * 100_000, "nested too deeply"),
        bad("no type", "xilnex", {"Data": {}}, "no event type at `EventName`"),
        bad("an empty type", "xilnex", {"EventName": ""}, "no event type at `EventName`"),
        bad("a body that is not an object", "xilnex", [1, 2], "no event type at `EventName`"),
        bad("a type that is not a string", "xilnex", {"EventName": 7}, "is a number, not a string"),
        bad(
            "a type that is an object", "xemelgo", {"topic": {"a": 1}}, "is an object, not a string"
        ),
        bad("a type too long to store", "xilnex", {"EventName": "x" * 201}, "201 characters long"),
        bad("no type header", "github", {"zen": "t"}, "no event type in header x-github-event"),
        bad(
            "no type in one notification",
            "xtnd",
            {
                "Properties": {"NotificationId": "n"},
                "Notifications": [{"Action": "OrderPicked"}, {}],
            },
            "no event type at `Action` in event 1",
        ),
        bad(
            "no notifications",
            "xtnd",
            {"Id": "d"},
            "`Notifications` should be a list of events, found null",
        ),
        bad(
            "notifications not a list",
            "xtnd",
            {"Notifications": {"Action": "OrderPicked"}},
            "found an object",
        ),
        bad("no event in the delivery", "xtnd", {"Notifications": []}, "is an empty list"),
    ],
)
def test_bad_deliveries_are_refused_with_the_reason(
    connector: str, body: Any, headers: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidPayload) as caught:
        split(connector, body, headers)
    assert caught.value.code == "invalid_payload"
    assert caught.value.status == 400
    assert message in caught.value.message


def test_an_expression_that_fails_on_this_body_is_invalid_payload() -> None:
    spec = {"type": {"jmespath": "to_string(length(kind))"}}
    assert split(spec, {"kind": "abc"})[0].type == "3"
    with pytest.raises(InvalidPayload, match="cannot be applied"):
        split(spec, {"kind": 12})


def test_a_byte_order_mark_is_tolerated() -> None:
    assert split("xilnex", b'\xef\xbb\xbf{"EventName": "Create Sales"}')[0].type == "Create Sales"


# --- the hot path --------------------------------------------------------------------------------


def test_a_bare_events_spec_works_like_its_profile() -> None:
    body, headers = sample("xtnd", "OrderPicked")
    from_profile = split_delivery(SHIPPED["xtnd"], headers, body, None)
    from_spec = split_delivery(SHIPPED["xtnd"].document["events"], headers, body, None)
    assert from_spec == from_profile


def test_expressions_are_compiled_once_per_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[str] = []
    compile_for_real = jmespath.compile

    def counting_compile(expression: str) -> Any:
        compiled.append(expression)
        return compile_for_real(expression)

    monkeypatch.setattr(jmespath, "compile", counting_compile)
    spec = {"split": "batch_for_compile_test", "type": {"jmespath": "kind"}}
    for _ in range(3):
        split(spec, {"batch_for_compile_test": [{"kind": "a"}, {"kind": "b"}]})
    assert sorted(compiled) == ["batch_for_compile_test", "kind"]


# --- nothing else escapes -------------------------------------------------------------------------

CONTENT_TYPES = st.one_of(
    st.none(),
    st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain"]),
    st.text(max_size=40),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["Action", "Notifications", "EventName", "topic", "type", "id", "data"])
            | st.text(max_size=8),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)
HEADERS = st.dictionaries(
    st.sampled_from(
        [
            "x-github-event",
            "x-github-delivery",
            "x-shopify-topic",
            "x-shopify-triggered-at",
            "webhook-id",
            "webhook-timestamp",
        ]
    ),
    st.text(max_size=30),
)


def split_or_refuse(
    connector: str, headers: dict[str, str], body: bytes, content_type: str | None
) -> None:
    try:
        events = split_delivery(SHIPPED[connector], headers, body, content_type)
    except (InvalidPayload, UnsupportedContentType):
        return
    assert events and all(isinstance(e.type, str) and e.type for e in events)
    assert all(KEY.fullmatch(e.dedupe_key) for e in events)
    assert all(len(e.dedupe_key) <= intake.MAX_KEY_LENGTH for e in events)


@settings(max_examples=300, deadline=None)
@given(
    connector=st.sampled_from(sorted(SHIPPED)),
    headers=HEADERS,
    body=st.binary(max_size=200),
    content_type=CONTENT_TYPES,
)
def test_arbitrary_bytes_are_events_or_a_clean_refusal(
    connector: str, headers: dict[str, str], body: bytes, content_type: str | None
) -> None:
    split_or_refuse(connector, headers, body, content_type)


@settings(max_examples=300, deadline=None)
@given(
    connector=st.sampled_from(sorted(SHIPPED)),
    headers=HEADERS,
    value=JSON_VALUES,
    content_type=CONTENT_TYPES,
)
def test_arbitrary_json_is_events_or_a_clean_refusal(
    connector: str, headers: dict[str, str], value: Any, content_type: str | None
) -> None:
    split_or_refuse(connector, headers, json.dumps(value).encode(), content_type)

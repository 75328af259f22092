"""The receive endpoint under random input: never a 5xx, and a refusal never stores anything.

Random bodies (bytes, JSON of every shape, provider-shaped events, nested, invalid UTF-8, other
encodings, sizes around the limit), headers (garbage, huge, signature headers right, wrong or
missing), content types and methods are sent to valid and unknown callback tokens of three
connectors: Xemelgo (HMAC), Stripe (timestamped) and the generic API-key sender. Every answer
is the contract's: a refusal carries the error body and stores no delivery and no event; an
acceptance stores its delivery with exactly the events it counts.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from sqlalchemy import func, select

from gateway.config import Settings
from gateway.models import Delivery, Event
from gateway.verify import sign
from gateway.views import Error, Receipt

#: About 10 s per backend; the cases the fuzzer found are pinned in tests/integration.
MAX_EXAMPLES = 300
#: A small limit, so that bodies around it are cheap to make.
LIMIT = 4096
RECEIVING = ("POST", "PUT")
OTHER_METHODS = ("GET", "DELETE", "PATCH", "HEAD", "TRACE", "OPTIONS")
GROUPS = {
    # connector: (function, registered events, secret)
    "xemelgo": ("webhooks", ["inventory.moved", "asset.moved"], "xemelgo-fuzz-secret-0123456789"),
    "stripe": ("events", ["customer.created"], "whsec_fuzz_" + "0" * 24),
    "generic": ("webhooks", ["order.created"], "generic-fuzz-key-0123456789"),
}
#: Where each connector puts its event type, and some types: registered, unregistered, odd.
TYPE_FIELD = {"xemelgo": "topic", "stripe": "type", "generic": "event_type"}
TYPES = [
    "inventory.moved",
    "asset.moved",
    "inventory.cycle_count",
    "customer.created",
    "order.created",
    "",
    "x" * 201,
    "nul\x00type",
]
#: Provider event ids: plain, too long for the index (hashed), and what PostgreSQL cannot hold.
IDS = ["evt_1", "evt_2", "x" * 400, "nul\x00id"]
SIGNATURE_HEADERS = ["xemelgo-signature", "Stripe-Signature", "x-api-key", "Authorization"]
CONTENT_TYPES = [
    None,
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=utf-16",
    "application/vnd.api+json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json; " + "p=1;" * 60,
    "application/json; charset=\x00",
    "application/vnd." + "x" * 200 + "+json",
    "garbage",
]

error_body = Draft202012Validator(Error.model_json_schema(mode="serialization"))
receipt_body = Draft202012Validator(Receipt.model_json_schema(mode="serialization"))

# --- strategies --------------------------------------------------------------------------

header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=80)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=15,
)
event_type = st.sampled_from(TYPES) | st.text(max_size=40)


@st.composite
def provider_shaped(draw: Any, connector: str) -> dict[str, Any]:
    """An event that looks like ``connector``'s (or another's), with any field odd or missing."""
    sender = draw(st.sampled_from([connector] * 4 + sorted(TYPE_FIELD)))
    event = {
        TYPE_FIELD[sender]: draw(event_type),
        "id": draw(st.sampled_from(IDS) | st.text(max_size=20) | st.integers()),
        "eventTimestamp": draw(st.integers() | st.text(max_size=10) | st.none()),
        "created": draw(st.integers(min_value=-(2**70), max_value=2**70) | st.none()),
        "event_time": draw(st.sampled_from(["2026-03-14T09:26:53Z", "yesterday", ""])),
        "data": draw(json_values),
    }
    keep = st.sampled_from([True] * 9 + [False])
    return {k: v for k, v in event.items() if draw(keep) or k == "data"}


def nested(depth: int, opener: str) -> bytes:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return (opener * depth + "1" + closer * depth).encode()


def encoded(value: Any, encoding: str, ensure_ascii: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ensure_ascii).encode(encoding, errors="surrogatepass")


def bodies(connector: str) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.builds(encoded, provider_shaped(connector), st.just("utf-8"), st.booleans()),
        st.builds(lambda event: encoded([event, event], "utf-8", True), provider_shaped(connector)),
        st.builds(
            encoded,
            json_values | provider_shaped(connector),
            st.sampled_from(["utf-8", "utf-16", "utf-8-sig", "utf-32"]),
            st.booleans(),
        ),
        st.binary(max_size=300),
        st.builds(
            nested, st.sampled_from([1, 50, 900, 1200, 100_000]), st.sampled_from(["[", '{"a":'])
        ),
        st.sampled_from(
            [
                b"",
                b"null",
                b'{"topic": "\xff\xfe"}',
                b'{"type": "\xed\xa0\x80"}',
                b'{"a": 1e999}',
                b'{"a": NaN}',
                b'{"a": ' + b"9" * 5000 + b"}",
            ]
        ),
        st.builds(
            lambda size: b'{"pad": "' + b"x" * (size - 11) + b'"}',
            st.sampled_from([LIMIT - 1, LIMIT, LIMIT + 1, 3 * LIMIT]),
        ),
    )


@st.composite
def requests(draw: Any) -> dict[str, Any]:
    # Weighted lists: most requests are meant to get through, so acceptance is fuzzed too.
    method = draw(st.sampled_from([*RECEIVING * 4, *OTHER_METHODS]))
    headers = draw(
        st.dictionaries(
            st.sampled_from(
                [*SIGNATURE_HEADERS, "Content-Encoding", "User-Agent", "Webhook-Id", "Stripe-Id"]
            )
            | st.from_regex(r"\AX-[A-Za-z0-9-]{1,20}\Z"),
            header_text,
            max_size=4,
        )
    )
    if draw(st.sampled_from([False] * 19 + [True])):
        headers["X-Padding"] = "p" * 20_000
    connector = draw(st.sampled_from(sorted(GROUPS)))
    return {
        "connector": connector,
        "known_token": draw(st.sampled_from([True] * 5 + [False])),
        "method": method,
        "body": draw(bodies(connector)),
        "content_type": draw(
            st.sampled_from(["application/json"] * len(CONTENT_TYPES) + CONTENT_TYPES) | header_text
        ),
        "headers": headers,
        "signing": draw(st.sampled_from(["right"] * 4 + ["wrong secret", "as drawn"])),
    }


# --- the test ----------------------------------------------------------------------------


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings with a small body limit."""
    return settings.with_overrides({"max_body_bytes": LIMIT})


@pytest.fixture
def groups(group_factory: Any) -> dict[str, dict[str, Any]]:
    """One group per connector, by connector name."""
    made = {}
    for connector, (function, events, secret) in GROUPS.items():
        made[connector] = group_factory(
            connector=connector, function=function, events=events, secret=secret
        )
    return made


def counts(gw: Any) -> tuple[int, int]:
    with gw.db.read_session() as session:
        # Accepted ones: a refused delivery leaves a row of its own.
        deliveries = session.scalar(select(func.count()).where(Delivery.outcome == "accepted"))
        events = session.scalar(select(func.count()).select_from(Event))
    return int(deliveries or 0), int(events or 0)


def statuses_of(gw: Any, delivery_id: str) -> Counter[str]:
    with gw.db.read_session() as session:
        rows = session.scalars(select(Event.status).where(Event.delivery_id == int(delivery_id)))
        return Counter(rows)


@pytest.mark.filterwarnings(
    # Only when an example fails: Hypothesis imports libcst to suggest an @example, and an
    # installed libcst older than mypy_extensions 1.1 warns on import. The failure stays.
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
)
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests())
def test_the_receive_endpoint_never_fails_and_stores_only_what_it_accepts(
    client: Any, gw: Any, groups: dict[str, dict[str, Any]], request: dict[str, Any]
) -> None:
    group = groups[request["connector"]]
    token = group["token"] if request["known_token"] else "unknown-" + group["token"][8:]
    headers = dict(request["headers"])
    if request["content_type"] is not None:
        headers["Content-Type"] = request["content_type"]
    if request["signing"] != "as drawn":
        secret = group["secret"] if request["signing"] == "right" else "a-wrong-secret-0123456789"
        spec = gw.connectors.get(request["connector"]).verification
        headers.update(sign(spec, secret, request["body"]))
    before = counts(gw)

    response = client.open(
        f"/hooks/{token}", method=request["method"], data=request["body"], headers=headers
    )

    after = counts(gw)
    assert response.status_code < 500, response.get_data(as_text=True)
    if request["method"] == "OPTIONS":  # answered by Flask: which methods the URL takes
        assert response.status_code == 200
        assert {"POST", "PUT"} <= set(response.allow)
        assert after == before
        return
    if request["method"] not in RECEIVING:
        assert response.status_code == 405
    if response.status_code != 200:
        assert after == before, "a refused delivery left rows behind"
        if request["method"] != "HEAD":
            assert error_body.is_valid(response.get_json()), response.get_data(as_text=True)
        return
    receipt = response.get_json()
    assert receipt_body.is_valid(receipt), receipt
    stored = receipt["accepted"] + receipt["duplicates"] + receipt["ignored"]
    assert after == (before[0] + 1, before[1] + stored)
    expected = {
        "pending": receipt["accepted"],
        "duplicate": receipt["duplicates"],
        "ignored": receipt["ignored"],
    }
    assert statuses_of(gw, receipt["delivery_id"]) == +Counter(expected)

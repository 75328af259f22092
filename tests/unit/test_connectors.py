"""Connector profiles: the shipped ones, the schema's and the rules' verdicts, catalogs, samples."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from gateway.connectors import (
    Profile,
    sample_delivery,
    sample_events,
    sample_path,
    shipped_profiles,
    validate_profile,
)
from gateway.errors import ValidationFailed

SHIPPED = [
    "generic",
    "github",
    "shopify",
    "standard-webhooks",
    "stripe",
    "xemelgo",
    "xilnex",
    "xtnd",
]


def minimal_document(**overrides: Any) -> dict[str, Any]:
    """A valid custom profile; keyword arguments replace top-level keys."""
    document: dict[str, Any] = {
        "name": "acme",
        "title": "Acme Test Sender",
        "functions": [{"name": "main", "events": ["thing.created", "thing.deleted"]}],
        "verification": {"scheme": "hmac", "header": "X-Acme-Signature"},
        "events": {"type": {"jmespath": "kind"}},
    }
    document.update(overrides)
    return document


@pytest.fixture
def document_factory() -> Callable[..., dict[str, Any]]:
    return minimal_document


@pytest.fixture
def acme() -> Profile:
    return validate_profile(
        minimal_document(
            functions=[
                {"name": "main", "events": ["thing.created", "thing.deleted"]},
                {"name": "open", "events": ["thing.created"], "open_catalog": True},
            ]
        )
    )


def problems(document: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        validate_profile(document)
    assert caught.value.code == "validation_failed"
    return [(detail.path, detail.message) for detail in caught.value.details]


# --- shipped profiles ------------------------------------------------------------------------


def test_the_schema_is_a_valid_2020_12_schema() -> None:
    schema = json.loads((resources.files("gateway.connectors") / "schema.json").read_text())
    Draft202012Validator.check_schema(schema)


def test_exactly_the_documented_profiles_ship() -> None:
    assert sorted(shipped_profiles()) == SHIPPED


def test_each_profile_file_is_named_after_its_profile() -> None:
    folder = resources.files("gateway.connectors") / "profiles"
    names = {file.name: json.loads(file.read_text())["name"] for file in folder.iterdir()}
    assert names == {f"{name}.json": name for name in SHIPPED}


def test_shipped_profiles_are_loaded_once() -> None:
    assert shipped_profiles() is shipped_profiles()


@pytest.mark.parametrize(
    ("connector", "function", "count", "open_catalog"),
    [
        ("xilnex", "event-hub", 10, True),  # the public sales events; client/payment/item are not
        ("xemelgo", "webhooks", 18, False),  # every documented topic
        ("xtnd", "backend", 21, False),  # every action of the complete list
        ("generic", "webhooks", 8, True),  # examples only: names depend on the sender
        ("stripe", "events", 24, True),  # common events of a very long list
        ("github", "webhooks", 22, True),
        ("shopify", "webhooks", 19, True),
        ("standard-webhooks", "webhooks", 6, True),  # examples only
    ],
)
def test_catalogs(connector: str, function: str, count: int, open_catalog: bool) -> None:
    found = shipped_profiles()[connector].function(function)
    assert len(found["events"]) == count
    assert found.get("open_catalog", False) is open_catalog


@pytest.mark.parametrize(
    ("connector", "expected"),
    [
        # any of: an HMAC in hex or base64, or the secret itself; '-' switches verification off
        (
            "xilnex",
            {
                "scheme": "any-of",
                "unverified_secret": "-",
                "schemes": [
                    {
                        "scheme": "hmac",
                        "header": "xilnex-webhook-signature",
                        "algorithm": "sha256",
                        "encoding": "any",
                    },
                    {"scheme": "header-secret", "header": "xilnex-webhook-signature"},
                ],
            },
        ),
        (
            "xemelgo",
            {
                "scheme": "hmac",
                "header": "xemelgo-signature",
                "algorithm": "sha256",
                "encoding": "hex",
                "prefix": "sha256=",
            },
        ),
        # signing is optional on XTND's side, hence the switch
        (
            "xtnd",
            {
                "scheme": "hmac",
                "unverified_secret": "-",
                "header": "ms-signature",
                "algorithm": "sha256",
                "encoding": "hex",
                "hex_case": "upper",
                "prefix": "sha256=",
            },
        ),
        # the API key is optional on the sender's side, hence the switch
        ("generic", {"scheme": "api-key", "unverified_secret": "-", "header": "x-api-key"}),
        ("stripe", {"scheme": "stripe", "header": "Stripe-Signature", "tolerance_s": 300}),
        (
            "github",
            {
                "scheme": "hmac",
                "header": "X-Hub-Signature-256",
                "algorithm": "sha256",
                "encoding": "hex",
                "prefix": "sha256=",
            },
        ),
        (
            "shopify",
            {
                "scheme": "hmac",
                "header": "X-Shopify-Hmac-Sha256",
                "algorithm": "sha256",
                "encoding": "base64",
            },
        ),
        (
            "standard-webhooks",
            {
                "scheme": "standard-webhooks",
                "id_header": "webhook-id",
                "timestamp_header": "webhook-timestamp",
                "signature_header": "webhook-signature",
                "tolerance_s": 300,
            },
        ),
    ],
)
def test_verification(connector: str, expected: dict[str, Any]) -> None:
    assert shipped_profiles()[connector].verification == expected


@pytest.mark.parametrize(
    ("connector", "events"),
    [
        (
            "xilnex",
            {
                "type": {"jmespath": "EventName"},
                "timestamp": {"jmespath": "EventTime", "unit": "iso"},
            },
        ),
        # Xemelgo's id names a delivery attempt, so the event is what is hashed
        (
            "xemelgo",
            {
                "type": {"jmespath": "topic"},
                "id": {"hash_of": "[topic, eventTimestamp, data]"},
                "timestamp": {"jmespath": "eventTimestamp", "unit": "ms"},
            },
        ),
        (
            "xtnd",
            {
                "split": "Notifications",
                "type": {"jmespath": "Action"},
                "id": {
                    "jmespath": "Properties.NotificationId",
                    "from": "delivery",
                    "with_index": True,
                },
            },
        ),
        (
            "generic",
            {
                "type": {"jmespath": "event_type"},
                "timestamp": {"jmespath": "event_time", "unit": "iso"},
            },
        ),
        (
            "stripe",
            {
                "type": {"jmespath": "type"},
                "id": {"jmespath": "id"},
                "timestamp": {"jmespath": "created", "unit": "s"},
            },
        ),
        ("github", {"type": {"header": "X-GitHub-Event"}, "id": {"header": "X-GitHub-Delivery"}}),
        (
            "shopify",
            {
                "type": {"header": "X-Shopify-Topic"},
                "id": {"header": "X-Shopify-Event-Id"},
                "timestamp": {"header": "X-Shopify-Triggered-At", "unit": "iso"},
            },
        ),
        (
            "standard-webhooks",
            {
                "type": {"jmespath": "type"},
                "id": {"header": "webhook-id"},
                "timestamp": {"header": "webhook-timestamp", "unit": "s"},
            },
        ),
    ],
)
def test_event_locators(connector: str, events: dict[str, Any]) -> None:
    assert shipped_profiles()[connector].document["events"] == events


def test_xemelgo_secret_hints_follow_its_documentation() -> None:
    hints = shipped_profiles()["xemelgo"].document["secret"]
    assert (hints["min_length"], hints["max_length"]) == (20, 256)


# --- validating custom profiles ------------------------------------------------------------


def test_a_minimal_custom_profile_validates(
    document_factory: Callable[..., dict[str, Any]],
) -> None:
    profile = validate_profile(document_factory())
    assert (profile.name, profile.title) == ("acme", "Acme Test Sender")


def test_the_profile_keeps_its_own_copy(document_factory: Callable[..., dict[str, Any]]) -> None:
    document = document_factory()
    profile = validate_profile(document)
    document["functions"][0]["events"].append("thing.moved")
    assert profile.function("main")["events"] == ["thing.created", "thing.deleted"]


def case(why: str, overrides: dict[str, Any], path: str, message: str) -> Any:
    """One row: the keys to replace, and where and what the problem report says."""
    return pytest.param(overrides, path, message, id=why)


def hmac_template(**overrides: Any) -> dict[str, Any]:
    """A Stripe-like templated hmac scheme; keyword arguments replace its keys."""
    return {
        "scheme": "hmac",
        "header": "X-Sig",
        "format": "t={timestamp},v1={signature}",
        "separator": ",",
        "signed_content": "{timestamp}.{body}",
        **overrides,
    }


def events(**locators: Any) -> dict[str, Any]:
    """An ``events`` override: the type from ``kind`` unless a locator replaces it."""
    return {"events": {"type": {"jmespath": "kind"}, **locators}}


@pytest.mark.parametrize(
    ("overrides", "path", "message"),
    [
        case(
            "an unknown scheme is named with the ones there are",
            {"verification": {"scheme": "md5", "header": "X-Sig"}},
            "verification.scheme",
            '"md5" is not one of "hmac", "stripe"',
        ),
        case(
            "a scheme refuses another scheme's keys",
            {"verification": {"scheme": "hmac", "header": "X-Sig", "id_header": "X-Id"}},
            "verification",
            '"id_header" is not a known key',
        ),
        case(
            "a signed content without the body",
            {"verification": hmac_template(signed_content="{timestamp}")},
            "verification.signed_content",
            "does not match",
        ),
        case(
            "a signed content with the body twice",
            {"verification": hmac_template(signed_content="{body}.{body}")},
            "verification.signed_content",
            "must hold {body} exactly once",
        ),
        case(
            "a part read from nowhere",
            {"verification": hmac_template(signed_content="{id}.{body}")},
            "verification.signed_content",
            "{id} comes from nowhere; say where it is read",
        ),
        case(
            "a part read from two places",
            {"verification": hmac_template(parts={"timestamp": "X-Time"})},
            "verification.signed_content",
            "{timestamp} is read from both format and parts",
        ),
        case(
            "a part read but not signed",
            {"verification": hmac_template(parts={"id": "X-Id"})},
            "verification.signed_content",
            "does not use {id}, read but unsigned",
        ),
        case(
            "a signature signing itself",
            {"verification": hmac_template(signed_content="{signature}.{timestamp}.{body}")},
            "verification.signed_content",
            "cannot hold {signature}, which signs it",
        ),
        case(
            "the body is no header",
            {"verification": hmac_template(parts={"body": "X-Body"})},
            "verification.parts.body",
            "{body} is never read from a header of its own",
        ),
        case(
            "a format item with two placeholders",
            {"verification": hmac_template(format="t={timestamp}v1={signature}")},
            "verification.format",
            "must hold exactly one placeholder",
        ),
        case(
            "a format without the signature",
            {"verification": hmac_template(format="t={timestamp}")},
            "verification.format",
            "does not match",
        ),
        case(
            "a separator without a format",
            {"verification": {"scheme": "hmac", "header": "X-Sig", "separator": ","}},
            "verification",
            '"format" is required',
        ),
        case(
            "templates are checked inside alternatives too",
            {
                "verification": {
                    "scheme": "any-of",
                    "schemes": [hmac_template(signed_content="{body}.{nonce}")],
                }
            },
            "verification.schemes[0].signed_content",
            "{nonce} comes from nowhere",
        ),
        case(
            "hmac needs its header",
            {"verification": {"scheme": "hmac"}},
            "verification",
            '"header" is required',
        ),
        case(
            "an unknown digest encoding",
            {"verification": {"scheme": "hmac", "header": "X-Sig", "encoding": "b32"}},
            "verification.encoding",
            '"b32" is not one of "hex", "base64" or "any"',
        ),
        case(
            "an API key in a header and a query parameter at once",
            {"verification": {"scheme": "api-key", "header": "X-Key", "query": "key"}},
            "verification",
            'must not have "header" here',
        ),
        case(
            "alternatives are checked as deeply as a top-level scheme",
            {"verification": {"scheme": "any-of", "schemes": [{"scheme": "api-key"}]}},
            "verification.schemes[0]",
            '"header" is required',
        ),
        case(
            "any-of without alternatives",
            {"verification": {"scheme": "any-of", "schemes": []}},
            "verification.schemes",
            "must not be empty",
        ),
        case(
            "an empty 'no verification' value would match a group without a secret",
            {"verification": {"scheme": "none", "unverified_secret": ""}},
            "verification.unverified_secret",
            "must not be empty",
        ),
        case("an unknown top-level key", {"colour": "blue"}, "$", '"colour" is not a known key'),
        case("names go into URLs", {"name": "Acme Corp"}, "name", "does not match"),
        case("no function", {"functions": []}, "functions", "must not be empty"),
        case(
            "a closed catalog without events",
            {"functions": [{"name": "main", "events": []}]},
            "functions[0].events",
            "must not be empty",
        ),
        case(
            "an event listed twice",
            {"functions": [{"name": "main", "events": ["a", "a"]}]},
            "functions[0].events",
            '["a", "a"] holds the same value more than once',
        ),
        case(
            "an unknown key in a function",
            {"functions": [{"name": "main", "events": ["a"], "extra": 1}]},
            "functions[0]",
            '"extra" is not a known key',
        ),
        case(
            "two functions with one name",
            {"functions": [{"name": "main", "events": ["a"]}, {"name": "main", "events": ["b"]}]},
            "functions[1].name",
            "duplicate function name 'main' (also functions[0])",
        ),
        case(
            "a split path that does not parse",
            events(split="items[?"),
            "events.split",
            "not a valid JMESPath expression",
        ),
        case(
            "a type path that does not parse",
            {"events": {"type": {"jmespath": "kind.."}}},
            "events.type.jmespath",
            "not a valid JMESPath expression",
        ),
        case(
            "a misspelt function fails only at run time, so it is caught here",
            {"events": {"type": {"jmespath": "lenght(kind)"}}},
            "events.type.jmespath",
            "unknown JMESPath function: lenght",
        ),
        case(
            "a hash_of path that does not parse",
            events(id={"hash_of": "[a, b"}),
            "events.id.hash_of",
            "not a valid JMESPath expression",
        ),
        case(
            "a type locator that says nothing",
            {"events": {"type": {}}},
            "events.type",
            "needs exactly one of: jmespath, header",
        ),
        case(
            "a type locator that says two things",
            {"events": {"type": {"jmespath": "kind", "header": "X-Kind"}}},
            "events.type",
            "needs exactly one of: jmespath, header",
        ),
        case(
            "an id locator that says two things",
            events(id={"header": "X-Id", "hash_of": "@"}),
            "events.id",
            "needs exactly one of: jmespath, header, hash_of",
        ),
        case(
            "a header name with a space",
            {"events": {"type": {"header": "X Kind"}}},
            "events.type.header",
            "does not match",
        ),
        case(
            "'from' applies to a jmespath only",
            events(id={"header": "X-Id", "from": "delivery"}),
            "events.id",
            '"from" is given, so "jmespath" is required',
        ),
        case(
            "a timestamp without its unit",
            events(timestamp={"jmespath": "at"}),
            "events.timestamp",
            '"unit" is required',
        ),
        case(
            "an unknown timestamp unit",
            events(timestamp={"jmespath": "at", "unit": "ns"}),
            "events.timestamp.unit",
            '"ns" is not one of "ms", "s" or "iso"',
        ),
        case(
            "every event of a split delivery would share one key",
            events(split="items", id={"header": "X-Id"}),
            "events.id.with_index",
            "must be true",
        ),
        case(
            "content types are bare media types",
            {"content_types": ["text/plain; charset=utf-8"]},
            "content_types[0]",
            "does not match",
        ),
        case(
            "secret hints that no secret can meet",
            {"secret": {"min_length": 30, "max_length": 20}},
            "secret",
            "min_length 30 is greater than max_length 20",
        ),
        case(
            "an unknown secret hint",
            {"secret": {"min_len": 30}},
            "secret",
            '"min_len" is not a known key',
        ),
    ],
)
def test_invalid_profiles_name_the_problem(
    document_factory: Callable[..., dict[str, Any]],
    overrides: dict[str, Any],
    path: str,
    message: str,
) -> None:
    found = problems(document_factory(**overrides))
    assert any(p == path and message in m for p, m in found), found


@pytest.mark.parametrize(
    "document",
    [
        None,  # not even an object
        [],
        "xtnd",
    ],
)
def test_a_non_object_is_refused_at_the_root(document: Any) -> None:
    assert [path for path, _ in problems(document)] == ["$"]


def test_every_problem_is_listed_at_once(document_factory: Callable[..., dict[str, Any]]) -> None:
    document = document_factory(
        name="Bad Name",
        verification={"scheme": "rot13"},
        functions=[{"name": "main", "events": ["a"]}, {"name": "main", "events": ["b"]}],
        events={"type": {"jmespath": "a["}},
        unexpected=True,
    )
    paths = {path for path, _ in problems(document)}
    assert paths == {
        "$",
        "name",
        "verification.scheme",
        "functions[1].name",
        "events.type.jmespath",
    }


def test_a_missing_required_key_is_reported_on_its_parent(
    document_factory: Callable[..., dict[str, Any]],
) -> None:
    document = document_factory()
    del document["events"]
    assert problems(document) == [("$", '"events" is required')]


# --- catalogs and the public view -------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "events", "unknown"),
    [
        ("main", ["thing.created"], []),  # all known
        ("main", ["thing.moved", "thing.created", "thing.lost"], ["thing.moved", "thing.lost"]),
        ("main", ["thing.moved", "thing.moved"], ["thing.moved"]),  # each unknown name once
        ("main", [], []),
        ("open", ["anything.at.all"], []),  # an open catalog takes any name
    ],
)
def test_unknown_events(
    acme: Profile, function: str, events: list[str], unknown: list[str]
) -> None:
    assert acme.unknown_events(function, events) == unknown


def test_unknown_events_against_shipped_catalogs() -> None:
    assert shipped_profiles()["xtnd"].unknown_events(
        "backend", ["OrderPicked", "OrderShipped"]
    ) == ["OrderShipped"]
    assert shipped_profiles()["xilnex"].unknown_events("event-hub", ["Create Client"]) == []


def test_an_absent_function_is_a_key_error_naming_the_choices(acme: Profile) -> None:
    with pytest.raises(KeyError, match=r"no function 'nope' .*main, open"):
        acme.function("nope")
    with pytest.raises(KeyError):
        acme.unknown_events("nope", ["thing.created"])


def test_public_spells_out_defaults(acme: Profile) -> None:
    shown = acme.public()
    assert shown["description"] == ""
    assert shown["content_types"] == ["application/json"]
    assert [(f["name"], f["title"], f["open_catalog"]) for f in shown["functions"]] == [
        ("main", "main", False),
        ("open", "open", True),
    ]
    assert shown["events"] == {"type": {"jmespath": "kind"}}
    assert shown["samples"] == []


def test_public_does_not_change_the_profile(acme: Profile) -> None:
    before = copy.deepcopy(acme.document)
    acme.public()["functions"].clear()
    assert acme.document == before


@pytest.mark.parametrize("connector", SHIPPED)
def test_public_shows_the_contract_fields(connector: str) -> None:
    shown = shipped_profiles()[connector].public()
    assert {"name", "title", "description", "functions", "verification", "events"} <= shown.keys()
    assert all({"name", "events", "open_catalog"} <= f.keys() for f in shown["functions"])
    assert json.loads(json.dumps(shown)) == shown  # plain JSON, ready for the API


# --- samples ------------------------------------------------------------------------------------

#: Every sample the product promises, and what a sender adds besides the body.
REQUIRED_SAMPLES = [
    ("xilnex", "Complete Sales"),
    ("xemelgo", "inventory.cycle_count"),
    ("xemelgo", "inventory.moved"),
    ("xemelgo", "asset.moved"),
    ("xtnd", "OrderCreated"),
    ("xtnd", "OrderPicked"),
    ("xtnd", "ProductCreated"),
    ("xtnd", "CustomerCreated"),
    ("xtnd", "AvailableBalanceChanged"),
    ("xtnd", "BalanceChanged"),
    ("xtnd", "PickingStarted"),
    ("generic", "order.created"),
    ("stripe", "payment_intent.succeeded"),
    ("stripe", "customer.created"),
    ("github", "push"),
    ("shopify", "orders/create"),
    ("standard-webhooks", "user.created"),
]


@pytest.mark.parametrize(("connector", "event_type"), REQUIRED_SAMPLES)
def test_required_samples_are_there(connector: str, event_type: str) -> None:
    assert event_type in sample_events(shipped_profiles()[connector])


@pytest.mark.parametrize(
    ("connector", "event_type", "file_name"),
    [
        ("xilnex", "Complete Sales", "Complete%20Sales.json"),  # spaces are percent-encoded
        ("shopify", "orders/create", "orders%2Fcreate.json"),  # so are slashes
        ("xemelgo", "inventory.moved", "inventory.moved.json"),  # dots and underscores stay
    ],
)
def test_sample_file_names_encode_the_event_type(
    connector: str, event_type: str, file_name: str
) -> None:
    path = sample_path(shipped_profiles()[connector], event_type)
    assert path.name == file_name
    assert path.is_file()


@pytest.mark.parametrize("connector", SHIPPED)
def test_every_sample_is_json_of_a_catalog_event(connector: str) -> None:
    profile = shipped_profiles()[connector]
    catalog = {event for function in profile.document["functions"] for event in function["events"]}
    for event_type in sample_events(profile):
        body, _ = sample_delivery(profile, event_type)
        assert isinstance(json.loads(body), dict)
        assert event_type in catalog


@pytest.mark.parametrize(
    ("connector", "event_type", "fixed", "fresh"),
    [
        ("xtnd", "OrderPicked", {"Content-Type": "application/json"}, set()),  # all in the body
        (
            "github",
            "push",
            {"Content-Type": "application/json", "X-GitHub-Event": "push"},
            {"X-GitHub-Delivery"},
        ),
        (
            "shopify",
            "orders/create",
            {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create"},
            {"X-Shopify-Event-Id", "X-Shopify-Triggered-At"},
        ),
        (
            "standard-webhooks",
            "user.created",
            {"Content-Type": "application/json"},
            {"webhook-id", "webhook-timestamp"},
        ),
    ],
)
def test_sample_delivery_headers(
    connector: str, event_type: str, fixed: dict[str, str], fresh: set[str]
) -> None:
    profile = shipped_profiles()[connector]
    _, headers = sample_delivery(profile, event_type)
    assert {k: v for k, v in headers.items() if k not in fresh} == fixed
    assert fresh <= headers.keys()


@pytest.mark.parametrize(
    ("connector", "event_type", "header"),
    [("github", "push", "X-GitHub-Delivery"), ("shopify", "orders/create", "X-Shopify-Event-Id")],
)
def test_each_sample_delivery_has_a_new_id(connector: str, event_type: str, header: str) -> None:
    profile = shipped_profiles()[connector]
    first, second = (sample_delivery(profile, event_type)[1][header] for _ in range(2))
    assert first != second


def test_a_missing_sample_is_a_key_error_listing_the_samples() -> None:
    with pytest.raises(KeyError, match=r"no sample for event 'push' \(samples: order\.created\)"):
        sample_delivery(shipped_profiles()["generic"], "push")


def test_a_custom_profile_has_no_samples(acme: Profile) -> None:
    assert sample_events(acme) == []
    with pytest.raises(KeyError, match="samples: none"):
        sample_delivery(acme, "thing.created")

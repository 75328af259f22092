"""Which webhook records take an event: types, filters, and why an event went unrouted."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import MappingError
from gateway.mapping import event_context
from gateway.routing import Route, compile_route, filter_scope, routes_for, why_unrouted

ORDER = {"data": {"region": "EU", "total": 12}, "kind": "order.paid"}


def context(payload: Any, event_type: str = "order.paid") -> dict[str, Any]:
    return event_context(
        payload,
        id="7",
        type=event_type,
        received_at="2026-05-05T07:02:11Z",
        group_id="g-1",
        connector="generic",
        function="webhooks",
        group={"name": "Shop EU", "external_id": "eu-1"},
    )


def route(filter_source: str | None = None, events: tuple[str, ...] = ("order.paid",)) -> Route:
    return compile_route("w-1", "Paid orders", events, filter_source, "orders", None)


def takes(filter_source: str, payload: Any) -> bool:
    return bool(routes_for([route(filter_source)], "order.paid", context(payload)))


@pytest.mark.parametrize(
    ("filter_source", "payload", "expected"),
    [
        ("data.region == 'EU'", ORDER, True),  # the payload's own keys, as filters always had
        ("payload.data.region == 'EU'", ORDER, True),  # as a mapping expression reads it
        ("event.type == 'order.paid'", ORDER, True),  # the event, as mappings see it
        ("event.connector == 'generic' && event.group_id == 'g-1'", ORDER, True),
        ("event.group.name == 'Shop EU' && event.group.external_id == 'eu-1'", ORDER, True),
        ("event.group.external_id == 'us-1'", ORDER, False),
        ("lower(data.region) == 'eu'", ORDER, True),  # the mapping functions
        ("number(concat(data.total, '0')) > `100`", ORDER, True),
        ("data.region == 'US'", ORDER, False),
        ("item == null", ORDER, True),  # no for_each element here
        # a payload's own `event` or `payload` key wins, so old filters keep their meaning
        ("event == 'created'", {"event": "created"}, True),
        ("event.type == 'order.paid'", {"event": "created"}, False),
        ("payload == `1`", {"payload": 1}, True),
        # a payload that is no object is only `payload`
        ("payload[0] == 'a'", ["a", "b"], True),
        ("event.type == 'order.paid' && payload == null", None, True),
    ],
)
def test_what_a_filter_sees(filter_source: str, payload: Any, expected: bool) -> None:
    assert takes(filter_source, payload) is expected


def test_the_scope_is_the_payload_beside_payload_and_event() -> None:
    event = context(ORDER)

    assert filter_scope(event) == {**ORDER, "payload": ORDER, "event": event["event"]}


def test_a_filter_that_fails_names_the_record() -> None:
    with pytest.raises(MappingError, match=r"filter .* of webhook record 'Paid orders' failed"):
        takes("number(data.region) > `1`", ORDER)


def test_a_record_without_the_type_is_never_asked() -> None:
    failing = route("number(data.region) > `1`", events=("order.refunded",))

    assert routes_for([failing], "order.paid", context(ORDER)) == []


@pytest.mark.parametrize(
    ("events", "event_type", "taken"),
    [
        (("*",), "order.paid", True),  # every event of the function
        (("*",), "an.event.added.later", True),
        (("order.refunded", "*"), "order.paid", True),
        (("order.refunded",), "order.paid", False),
    ],
)
def test_a_record_taking_every_event(events: tuple[str, ...], event_type: str, taken: bool) -> None:
    routes = routes_for([route(events=events)], event_type, context(ORDER, event_type))
    assert bool(routes) is taken


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ([], "no active webhook record of this group takes 'order.paid'"),
        (
            [route(events=("order.refunded",))],
            "no active webhook record of this group takes 'order.paid'",
        ),
        (
            [route("data.region == 'US'")],
            "1 active webhook record of this group takes 'order.paid',"
            " but its filter did not match",
        ),
        (
            [route("data.region == 'US'", events=("*",))],
            "1 active webhook record of this group takes 'order.paid',"
            " but its filter did not match",
        ),
        (
            [route("data.region == 'US'"), route("data.total > `100`")],
            "2 active webhook records of this group take 'order.paid',"
            " but none of their filters matched",
        ),
    ],
)
def test_why_an_event_is_unrouted(routes: list[Route], message: str) -> None:
    assert why_unrouted(routes, "order.paid") == message

"""Every list of the admin API pages alike: `limit`, and a cursor only the list itself gave out.

One table names every list with the order it promises; each test runs over all of them, so
that a list added without paging, or paged its own way, fails here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from gateway.paging import MAX_LIMIT
from gateway.services import Gateway

MAPPING = {
    "upserts": [
        {
            "key": "item",
            "object": "Item__c",
            "external_id_field": "Item_Id__c",
            "external_id": "payload.data.itemId",
        }
    ]
}

#: Every list: its path, and the order its items come in, as a sort key of one item.
LISTS = [
    pytest.param("/connectors", lambda c: c["name"], id="connectors"),
    pytest.param("/groups", lambda g: g["id"], id="groups"),
    pytest.param(
        "/groups/{group_id}/webhooks",
        lambda w: (not w["is_template"], w["created_at"], w["id"]),  # the template first
        id="webhooks",
    ),
    pytest.param("/mappings", lambda m: m["name"], id="mappings"),
    pytest.param("/mappings/{mapping}/versions", lambda m: -m["version"], id="versions"),
    pytest.param("/events", lambda e: -int(e["id"]), id="events"),
    pytest.param("/targets", lambda t: (not t["default"], t["name"]), id="targets"),
]
BAD_LIMITS = [
    "0",
    "-1",
    str(MAX_LIMIT + 1),
    "9" * 5000,  # more digits than int() takes
    "ten",
    "1.5",
    "",
    "²",  # passes str.isdigit
]


@pytest.fixture
def lists(admin: Any, group_factory: Any, deliver: Any) -> dict[str, str]:
    """Three items at least in every list; the ids that the lists' paths name."""
    group = group_factory(events=["inventory.moved"])
    group_factory(name="Main org", target="salesforce")
    group_factory(name="EU org", target="salesforce:eu")
    template = f"/webhooks/{group['template_webhook_id']}"
    for label in ("First", "Second"):
        body = {"label": label, "events": ["inventory.moved"]}
        assert admin.post(f"{template}/clone", body).status_code == 201
    for name in ("gamma", "alpha", "beta"):
        assert admin.put(f"/mappings/{name}", MAPPING).status_code == 201
    for version in (2, 3):
        changed = {**MAPPING, "description": f"version {version}"}
        assert admin.put("/mappings/alpha", changed).status_code == 200
    for number in range(3):
        event = {"id": f"e-{number}", "topic": "inventory.moved", "data": {"itemId": "A-1"}}
        assert deliver(group, json.dumps(event).encode()).status_code == 200
    return {"group_id": group["id"], "mapping": "alpha"}


def _walk(admin: Any, url: str, limit: int) -> list[dict[str, Any]]:
    """Every page of a list, following each next_cursor until it is null."""
    pages = [admin.get(url, query_string={"limit": limit}).get_json()]
    while pages[-1]["next_cursor"] is not None:
        cursor = pages[-1]["next_cursor"]
        pages.append(admin.get(url, query_string={"limit": limit, "cursor": cursor}).get_json())
    return pages


def _a_cursor(admin: Any, url: str) -> str:
    cursor: str = admin.get(url, query_string={"limit": 1}).get_json()["next_cursor"]
    assert cursor, url
    return cursor


def _tampered(cursor: str) -> str:
    """The cursor with its first character changed."""
    return ("B" if cursor[0] == "A" else "A") + cursor[1:]


def assert_refused(response: Any, code: str, parameter: str, case: str = "") -> None:
    assert response.status_code == 400, (case, response.get_data(as_text=True))
    error = response.get_json()["error"]
    assert error["code"] == code, case
    assert [d["path"] for d in error["details"]] == [parameter], case


@pytest.mark.parametrize(("path", "order"), LISTS)
def test_paging_one_by_one_walks_every_item_once_in_order(
    admin: Any, lists: dict[str, str], path: str, order: Callable[[Any], Any]
) -> None:
    url = path.format(**lists)

    [whole] = _walk(admin, url, MAX_LIMIT)
    pages = _walk(admin, url, 1)

    items = whole["items"]
    assert len(items) >= 3
    assert items == sorted(items, key=order)
    assert [item for page in pages for item in page["items"]] == items
    assert [len(page["items"]) for page in pages] == [1] * len(items)


@pytest.mark.parametrize(("path", "order"), LISTS)
def test_a_next_cursor_is_given_exactly_when_more_items_follow(
    admin: Any, lists: dict[str, str], path: str, order: Callable[[Any], Any]
) -> None:
    url = path.format(**lists)
    count = len(admin.get(url).get_json()["items"])

    exact = admin.get(url, query_string={"limit": count}).get_json()
    one_short = admin.get(url, query_string={"limit": count - 1}).get_json()

    assert (len(exact["items"]), exact["next_cursor"]) == (count, None)
    assert one_short["next_cursor"] is not None


@pytest.mark.parametrize(("path", "order"), LISTS)
def test_a_cursor_the_list_did_not_give_out_is_refused(
    admin: Any, lists: dict[str, str], path: str, order: Callable[[Any], Any]
) -> None:
    url = path.format(**lists)
    other = "/connectors" if url == "/groups" else "/groups"
    cursors = {
        "garbage": "garbage",
        "tampered": _tampered(_a_cursor(admin, url)),
        "another list's": _a_cursor(admin, other),
        "an old event id": "12",
    }

    for kind, cursor in cursors.items():
        response = admin.get(url, query_string={"limit": 1, "cursor": cursor})

        assert_refused(response, "invalid_cursor", "cursor", kind)


def test_a_cursor_of_one_groups_webhooks_is_refused_by_another(
    admin: Any, lists: dict[str, str], group_factory: Any
) -> None:
    cursor = _a_cursor(admin, f"/groups/{lists['group_id']}/webhooks")
    other = group_factory(name="Other")

    response = admin.get(f"/groups/{other['id']}/webhooks", query_string={"cursor": cursor})

    assert_refused(response, "invalid_cursor", "cursor")


@pytest.mark.parametrize(("path", "order"), LISTS)
def test_a_bad_limit_is_refused_with_details(
    admin: Any, lists: dict[str, str], path: str, order: Callable[[Any], Any]
) -> None:
    url = path.format(**lists)

    for limit in BAD_LIMITS:
        response = admin.get(url, query_string={"limit": limit})

        assert_refused(response, "invalid_limit", "limit", limit)


@pytest.mark.parametrize(("path", "order"), LISTS)
def test_limit_or_cursor_given_twice_is_refused(
    admin: Any, lists: dict[str, str], path: str, order: Callable[[Any], Any]
) -> None:
    url = path.format(**lists)
    cursor = _a_cursor(admin, url)

    for query in ("limit=1&limit=2", f"limit=1&cursor={cursor}&cursor={cursor}"):
        response = admin.get(url, query_string=query)

        assert_refused(response, "repeated_parameter", query.split("&")[-1].split("=")[0], query)


@contextmanager
def statements(gw: Gateway) -> Iterator[list[str]]:
    """The SQL statements the gateway's engines run meanwhile."""
    run: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        run.append(statement)

    engines = {gw.db.engine, gw.db.read_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield run
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


def test_a_page_of_groups_takes_as_many_statements_for_twenty_groups_as_for_one(
    admin: Any, gw: Gateway, group_factory: Callable[..., dict[str, Any]]
) -> None:
    counts = {}
    for total in (1, 20):
        while len(admin.get("/groups?limit=500").get_json()["items"]) < total:
            group_factory()
        with statements(gw) as run:
            page = admin.get("/groups?limit=500").get_json()["items"]
        assert len(page) == total
        assert all(group["template_webhook_id"] for group in page)
        counts[total] = len(run)

    assert counts[20] == counts[1]

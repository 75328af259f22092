"""Browsing the embedded record store through the admin API: its objects with their counts, one
object's records paged and filtered, and deleting a record."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update

from gateway.models import Record
from gateway.targets.base import UpsertRequest
from gateway.targets.local import LocalTarget

#: Contacts as a mapping would write them, with when each was last written.
CONTACTS = {
    "C-1": ({"Email": "ada@example.com", "Age": 36, "City": "London"}, "2026-12-01T10:00:00Z"),
    "C-2": ({"Email": "bob@example.com", "Age": 41, "City": "Zürich"}, "2026-12-02T10:00:00Z"),
    "C-3": ({"Email": "cy@example.com", "Age": 36, "City": "Paris"}, "2026-12-03T10:00:00Z"),
    "C-4": ({"Email": "dee@example.org", "Age": 52, "City": "Oslo"}, "2026-12-04T10:00:00Z"),
    "C-5": ({"Email": "eve@example.org", "Age": None, "City": "LONDON"}, "2026-12-05T10:00:00Z"),
}

Store = Callable[..., None]


@pytest.fixture
def store(gw: Any) -> Store:
    """Write a record as the local target does, then date its last write."""

    def put(obj: str, external_id: str, fields: dict[str, Any], updated_at: str) -> None:
        with gw.db.session() as session:
            LocalTarget(session).upsert([UpsertRequest(obj, "Ext_Id__c", external_id, fields)])
            session.execute(
                update(Record)
                .where(Record.object == obj, Record.external_id == external_id)
                .values(updated_at=datetime.fromisoformat(updated_at).astimezone(UTC))
            )

    return put


@pytest.fixture
def contacts(store: Store) -> None:
    for external_id, (fields, updated_at) in CONTACTS.items():
        store("Contact", external_id, fields, updated_at)
    store("Account", "A-1", {"Name": "Acme"}, "2026-12-01T00:00:00Z")


def _ids(admin: Any, query: str, obj: str = "Contact") -> list[str]:
    response = admin.get(f"/records/{obj}", query_string=query)
    assert response.status_code == 200, response.get_json()
    return [item["external_id"] for item in response.get_json()["items"]]


def test_the_objects_are_listed_by_name_with_their_counts(admin: Any, contacts: None) -> None:
    response = admin.get("/records")

    assert response.status_code == 200
    assert response.get_json() == {
        "items": [{"object": "Account", "count": 1}, {"object": "Contact", "count": 5}],
        "next_cursor": None,
    }


def test_an_empty_store_has_no_objects(admin: Any) -> None:
    assert admin.get("/records").get_json() == {"items": [], "next_cursor": None}


def test_a_record_in_the_list_is_the_record_as_shown_alone(admin: Any, contacts: None) -> None:
    listed = admin.get("/records/Contact", query_string="limit=1").get_json()["items"][0]

    assert listed == admin.get("/records/Contact/C-1").get_json()
    assert listed["fields"] == {"Ext_Id__c": "C-1", **CONTACTS["C-1"][0]}
    assert listed["updated_at"] == "2026-12-01T10:00:00Z"


def test_the_pages_of_an_object_follow_one_another_by_external_id(
    admin: Any, contacts: None
) -> None:
    seen: list[str] = []
    pages = 0
    query = "limit=2"
    while True:
        body = admin.get("/records/Contact", query_string=query).get_json()
        seen += [item["external_id"] for item in body["items"]]
        pages += 1
        if body["next_cursor"] is None:
            break
        query = f"limit=2&cursor={body['next_cursor']}"

    assert (seen, pages) == (sorted(CONTACTS), 3)


def test_an_object_without_records_lists_none(admin: Any, contacts: None) -> None:
    assert _ids(admin, "", obj="Lead") == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("field=Email&value=bob@example.com", ["C-2"]),
        ("field=Age&value=36", ["C-1", "C-3"]),  # a number matches its text
        ("field=City&value=london", []),  # a value is matched exactly
        ("field=Missing&value=x", []),
        ("updated_since=2026-12-03T10:00:00Z", ["C-3", "C-4", "C-5"]),  # at or after
        ("updated_until=2026-12-03T10:00:00Z", ["C-1", "C-2"]),  # before
        ("updated_since=2026-12-02T00:00:00Z&updated_until=2026-12-04T00:00:00Z", ["C-2", "C-3"]),
        ("updated_since=2026-12-03T11:00:00+01:00", ["C-3", "C-4", "C-5"]),  # an offset counts
        ("contains=example.org", ["C-4", "C-5"]),
        ("contains=LONDON", ["C-1", "C-5"]),  # ignoring case
        ("contains=zürich", ["C-2"]),  # beyond ASCII
        ("contains=c-3", ["C-3"]),  # the external id
        ("contains=100%", []),  # a wildcard is a character like any other
        ("field=Age&value=36&updated_since=2026-12-02T00:00:00Z", ["C-3"]),  # all at once
    ],
)
def test_the_filters_choose_the_records(
    admin: Any, contacts: None, query: str, expected: list[str]
) -> None:
    assert _ids(admin, query) == expected


def test_filtered_pages_follow_one_another(admin: Any, contacts: None) -> None:
    first = admin.get("/records/Contact", query_string="contains=example.com&limit=2").get_json()
    rest = admin.get(
        "/records/Contact",
        query_string=f"contains=example.com&limit=2&cursor={first['next_cursor']}",
    ).get_json()

    assert [i["external_id"] for i in first["items"] + rest["items"]] == ["C-1", "C-2", "C-3"]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "path"),
    [
        ("field=Email", "value"),
        ("value=ada@example.com", "field"),
        ("field=Bad%20Name&value=x", "field"),
        ("updated_since=yesterday", "updated_since"),
        ("updated_until=soon", "updated_until"),
    ],
)
def test_a_filter_that_cannot_be_read_is_refused_naming_it(
    admin: Any, contacts: None, query: str, path: str
) -> None:
    response = admin.get("/records/Contact", query_string=query)

    assert response.status_code == 422
    assert [d["path"] for d in response.get_json()["error"]["details"]] == [path]


def test_a_deleted_record_is_gone_and_the_others_stay(admin: Any, contacts: None) -> None:
    response = admin.delete("/records/Contact/C-2")

    assert (response.status_code, response.get_data()) == (204, b"")
    assert admin.get("/records/Contact/C-2").status_code == 404
    assert _ids(admin, "") == ["C-1", "C-3", "C-4", "C-5"]
    assert admin.get("/records").get_json()["items"][1] == {"object": "Contact", "count": 4}


def test_deleting_an_absent_record_is_404_naming_it(admin: Any, contacts: None) -> None:
    admin.delete("/records/Contact/C-2")

    response = admin.delete("/records/Contact/C-2")

    assert response.status_code == 404
    assert response.get_json()["error"] == {
        "code": "not_found",
        "message": "no Contact record 'C-2'",
    }


def test_an_external_id_with_a_slash_is_shown_and_deleted(admin: Any, store: Store) -> None:
    store("Order__c", "2026/0001", {"Total__c": 10}, "2026-12-01T00:00:00Z")

    assert admin.get("/records/Order__c/2026/0001").status_code == 200
    assert admin.delete("/records/Order__c/2026/0001").status_code == 204
    assert _ids(admin, "", obj="Order__c") == []
